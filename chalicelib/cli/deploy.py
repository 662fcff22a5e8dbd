"""``slipstream dags deploy [PATH]``: ship a project's DAGs to the stage's bucket and tables.

PATH is the project folder holding ``dags/`` (and ``operators/``): the whole
``dags/`` folder is deployed, because the bundle is the whole folder and a
DAG missing from it is marked inactive. Where the state lives comes from the
environment (``SLIPSTREAM_*``, see StoreSettings), so the same command
deploys to AWS or, with ``SLIPSTREAM_ENDPOINT_URL``, to the local stack.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chalicelib.cli.aws_errors import aws_errors_in_one_line
from chalicelib.cli.main import ImportTimeout, dags_app
from chalicelib.cli.remote import ApiKey, ApiUrl, Client, bad_input, configured
from chalicelib.core.errors import Problem
from chalicelib.deploy.bundle_store import S3BundleStore
from chalicelib.deploy.deployer import DeployReport, DeployStatus, deploy, detect_git_commit
from chalicelib.store.settings import StoreSettings

if TYPE_CHECKING:  # pynamodb and botocore load only when a deploy runs
    from chalicelib.store.dynamodb import DynamoStateStore

EXIT_FAILED = 1
SHORT_VERSION = 12


@dags_app.command("deploy")
def deploy_command(
    path: Annotated[str, typer.Argument(help="Project folder holding dags/ and operators/.")] = ".",
    stage: Annotated[
        str | None, typer.Option("--stage", help="Stage to deploy to (default: SLIPSTREAM_STAGE).")
    ] = None,
    unpause: Annotated[
        bool,
        typer.Option(
            "--unpause",
            help="Create new DAGs unpaused (Airflow creates them paused); "
            "DAGs deployed before keep their paused state.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    import_timeout: ImportTimeout = None,
) -> None:
    """Validate every DAG, upload the code bundle and register new DAG versions.

    With an API (SLIPSTREAM_API_URL or --api-url) the DAGs are checked here and
    sent to it; otherwise they go straight to the stage's bucket and tables.
    Nothing is written when any DAG file is broken: exit code 1 with every problem.
    """
    root = Path(path)
    if not (root / "dags").is_dir():
        _fail(
            [Problem("no dags/ folder here; pass the project folder that holds dags/", file=path)],
            as_json,
        )
    if configured(api_url):
        from chalicelib.cli.deploy_remote import deploy_remote

        if stage is not None:
            bad_input("--stage is for a deploy straight to the stores; an API deploys to its own")

        client = Client.from_options(api_url, api_key)
        deploy_remote(
            root,
            client,
            unpause=unpause,
            as_json=as_json,
            on_problems=_fail,
            import_timeout=import_timeout,
        )
        return
    settings = StoreSettings(stage=stage) if stage else StoreSettings()
    with aws_errors_in_one_line(settings):
        store, bundles = build_targets(settings)
        report = deploy(
            [str(root / "dags")],
            store=store,
            bundles=bundles,
            bundle_root=str(root),
            now=dt.datetime.now(dt.UTC),
            git_commit=detect_git_commit(str(root)),
            stage=settings.stage,
            paused_at_creation=not unpause,
            import_timeout=import_timeout,
        )
    if as_json:
        typer.echo(json.dumps(report_json(report, settings), indent=2, sort_keys=True))
    else:
        _print(report, settings)
    if report.problems:
        raise typer.Exit(EXIT_FAILED)


def build_targets(settings: StoreSettings) -> tuple[DynamoStateStore, S3BundleStore]:
    """The stage's state store and bundle bucket, on AWS or on ``endpoint_url``."""
    import boto3  # type: ignore[import-untyped]

    from chalicelib.store.dynamodb import DynamoStateStore

    s3 = boto3.client("s3", region_name=settings.region, endpoint_url=settings.endpoint_url)
    return DynamoStateStore(settings, s3_client=s3), S3BundleStore(settings.bucket, s3)


def report_json(report: DeployReport, settings: StoreSettings) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "stage": settings.stage,
        "bucket": settings.bucket,
        "bundle_key": report.bundle_key,
        "bundle_files": report.bundle_files,
        "git_commit": report.git_commit,
        "dags": [
            {
                "dag_id": d.dag_id,
                "status": str(d.status),
                "version": d.version,
                "previous_version": d.previous_version,
                "file": d.fileloc,
                "tasks": d.tasks,
                "paused": d.paused,
                "next_due_at": d.next_due_at.isoformat() if d.next_due_at else None,
            }
            for d in report.dags
        ],
        "deactivated": report.deactivated,
        "problems": [p.to_json() for p in report.problems],
    }


_STATUS_STYLE = {
    DeployStatus.CREATED: "green",
    DeployStatus.UPDATED: "yellow",
    DeployStatus.REACTIVATED: "cyan",
    DeployStatus.UNCHANGED: "dim",
}


def _print(report: DeployReport, settings: StoreSettings) -> None:
    out = Console(highlight=False)
    if report.problems:
        _print_problems(out, report.problems)
        return
    table = Table(title=f"Deployed to stage {settings.stage}", title_justify="left")
    table.add_column("DAG id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("version", no_wrap=True, min_width=SHORT_VERSION)
    table.add_column("tasks", justify="right")
    table.add_column("paused")
    table.add_column("next due (UTC)", no_wrap=True)
    table.add_column("file", overflow="fold")
    for d in report.dags:
        style = _STATUS_STYLE[d.status]
        table.add_row(
            escape(d.dag_id),
            f"[{style}]{d.status}[/{style}]",
            d.version[:SHORT_VERSION],
            str(d.tasks),
            "yes" if d.paused else "no",
            d.next_due_at.strftime("%Y-%m-%d %H:%M") if d.next_due_at else "-",
            escape(d.fileloc),
        )
    out.print(table)
    for dag_id in report.deactivated:
        out.print(f"[red]inactive[/red] {escape(dag_id)}: no longer in the DAG files")
    commit = report.git_commit[:SHORT_VERSION] if report.git_commit else "none"
    out.print(
        f"bundle s3://{settings.bucket}/{report.bundle_key} "
        f"({report.bundle_files} files), git commit {commit}"
    )


def _print_problems(out: Console, problems: list[Problem]) -> None:
    for problem in problems:
        out.print(f"[red]{escape(str(problem))}[/red]", soft_wrap=True)
    noun = "problem" if len(problems) == 1 else "problems"
    out.print(f"[bold red]{len(problems)} {noun}[/bold red]: nothing was deployed")


def _fail(problems: list[Problem], as_json: bool) -> None:
    if as_json:
        body = {"ok": False, "problems": [p.to_json() for p in problems]}
        typer.echo(json.dumps(body, indent=2, sort_keys=True))
    else:
        _print_problems(Console(highlight=False), problems)
    raise typer.Exit(EXIT_FAILED)
