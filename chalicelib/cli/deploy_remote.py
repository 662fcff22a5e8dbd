"""``slipstream dags deploy`` to a Slipstream API (``SLIPSTREAM_API_URL``).

The DAG files are imported and validated here, where their code is; the API
receives only the specs and the bundle (``POST /api/v2/slipstream/deploys``)
and writes them for the caller's tenant without importing any DAG code. A
broken file is reported here and nothing of the deploy is sent: only its
problems (``POST /api/v2/slipstream/deploys/refused``), so the API lists them
as the tenant's import errors.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chalicelib.cli.output import print_json
from chalicelib.cli.remote import Client, bad_input
from chalicelib.deploy.deployer import DeployPlan, detect_git_commit, plan_deploy
from chalicelib.store.import_errors import relative_path

MAX_DEPLOY_BYTES = 5 * 1024 * 1024  # the API's limit (a Lambda request takes 6 MB)
SHORT_VERSION = 12


def deploy_body(plan: DeployPlan, git_commit: str | None, unpause: bool) -> dict[str, Any]:
    assert plan.bundle is not None
    return {
        "bundle": base64.b64encode(plan.bundle.data).decode("ascii"),
        "bundle_sha256": plan.bundle.sha256,
        "specs": [spec.canonical_json() for spec in plan.specs],
        "scanned_files": plan.scanned_files,
        "git_commit": git_commit,
        "unpause": unpause,
    }


def send_refusal(client: Client, plan: DeployPlan, root: Path) -> None:
    """Tell the API which files refused this deploy (its import errors). Best effort:
    an API that cannot take them (older, unreachable) must not hide the problems,
    which are printed next either way."""
    problems = [
        {**asdict(p), "file": p.file and relative_path(p.file, root)} for p in plan.problems[:1000]
    ]
    try:
        client.post("/slipstream/deploys/refused", {"problems": problems})
    except typer.Exit:
        typer.echo("(the API did not record these problems as import errors)", err=True)


def deploy_remote(
    root: Path,
    client: Client,
    *,
    unpause: bool,
    as_json: bool,
    on_problems: Any,
    import_timeout: float | None = None,
) -> None:
    """Plan here, apply there. ``on_problems`` reports a broken plan and exits 1."""
    plan = plan_deploy([str(root / "dags")], bundle_root=str(root), import_timeout=import_timeout)
    if plan.problems:
        send_refusal(client, plan, root)
        on_problems(plan.problems, as_json)
    body = deploy_body(plan, detect_git_commit(str(root)), unpause)
    size = len(json.dumps(body))
    if size > MAX_DEPLOY_BYTES:
        bad_input(
            f"the deploy is {size / 2**20:.1f} MB; the API takes {MAX_DEPLOY_BYTES // 2**20} MB "
            "(keep data files out of dags/ and operators/)"
        )
    answer = client.post("/slipstream/deploys", body)
    if as_json:
        print_json({"ok": True, **answer, "problems": []})  # the shape of a direct deploy
    else:
        _print(answer, client.base_url)


def _print(answer: dict[str, Any], url: str) -> None:
    out = Console(highlight=False)
    table = Table(title=f"Deployed to {url} (stage {answer['stage']})", title_justify="left")
    for column in ("DAG id", "status", "version", "tasks", "paused", "file"):
        table.add_column(column, overflow="fold")
    for dag in answer["dags"]:
        table.add_row(
            escape(dag["dag_id"]),
            dag["status"],
            dag["version"][:SHORT_VERSION],
            str(dag["tasks"]),
            "yes" if dag["paused"] else "no",
            escape(dag["file"]),
        )
    out.print(table)
    for dag_id in answer["deactivated"]:
        out.print(f"[red]inactive[/red] {escape(dag_id)}: no longer in the DAG files")
    commit = (answer.get("git_commit") or "none")[:SHORT_VERSION]
    typer.echo(
        f"bundle {answer['bundle_key']} ({answer['bundle_files']} files), git commit {commit}"
    )
