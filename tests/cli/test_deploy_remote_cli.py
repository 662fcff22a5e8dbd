"""``slipstream dags deploy`` to an API: planned here, applied by ``POST /slipstream/deploys``."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chalicelib.cli.deploy_remote import deploy_body
from chalicelib.cli.main import _register_commands, app
from chalicelib.deploy.deployer import plan_deploy
from tests.api.served import ROOT, Served, serve
from tests.deploy.projects import imports_restored

_register_commands()
runner = CliRunner()

HELLO = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("{dag_id}", schedule="@daily", start_date=dt.datetime(2024, 1, 1)):
    EmptyOperator(task_id="noop")
"""
BROKEN = "from chalicelib.sdk import DAG\n\nwith DAG('broken'  # unclosed\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("deploy-api")) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "project"
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "remote_hello.py").write_text(HELLO.format(dag_id="remote_hello"))
    (root / "operators").symlink_to(ROOT / "operators")
    with imports_restored():
        yield root


def deploy_cli(served: Served, project: Path, *args: str, role: str = "op") -> Any:
    env = {"SLIPSTREAM_API_URL": served.url, "SLIPSTREAM_API_KEY": served.keys[("default", role)]}
    return runner.invoke(app, ["dags", "deploy", str(project), *args], env=env)


def deploys(served: Served) -> int:
    events = served.call("GET", "/eventLogs", params={"event": "deploy", "limit": 100})
    assert events.status_code == 200, events.text
    return int(events.json()["total_entries"])


def test_deploy_through_the_api(served: Served, project: Path) -> None:
    result = deploy_cli(served, project, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert [(d["dag_id"], d["status"]) for d in answer["dags"]] == [("remote_hello", "created")]
    dag = served.call("GET", "/dags/remote_hello")
    assert dag.status_code == 200 and dag.json()["is_paused"] is True
    listed = {d["dag_id"] for d in served.call("GET", "/dags").json()["dags"]}
    assert "remote_hello" in listed
    assert served.call("GET", "/dags/remote_hello", tenant="acme").status_code == 404

    again = deploy_cli(served, project)
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.stdout


def test_a_broken_file_changes_nothing(served: Served, project: Path) -> None:
    before = deploys(served)
    (project / "dags" / "remote_second.py").write_text(HELLO.format(dag_id="remote_second"))
    (project / "dags" / "broken.py").write_text(BROKEN)
    result = deploy_cli(served, project)
    assert result.exit_code == 1
    assert "broken.py" in result.output and "nothing was deployed" in result.output
    assert served.call("GET", "/dags/remote_second").status_code == 404
    assert deploys(served) == before
    # the API lists the refused file as the tenant's import error, until a good deploy
    listed = served.call("GET", "/importErrors", role="viewer").json()["import_errors"]
    assert [e["filename"] for e in listed] == ["dags/broken.py"]
    assert "dags/broken.py:3:" in listed[0]["stack_trace"]
    (project / "dags" / "broken.py").unlink()
    assert deploy_cli(served, project).exit_code == 0
    assert served.call("GET", "/importErrors", role="viewer").json()["total_entries"] == 0


def test_stage_is_refused_with_an_api(served: Served, project: Path) -> None:
    result = deploy_cli(served, project, "--stage", "prod")
    assert result.exit_code == 2 and "--stage" in result.stderr


def test_a_viewer_may_not_deploy(served: Served, project: Path) -> None:
    result = deploy_cli(served, project, role="viewer")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: 403 ")


def _body(project: Path) -> dict[str, Any]:
    plan = plan_deploy([str(project / "dags")], bundle_root=str(project))
    assert plan.ok, plan.problems
    return deploy_body(plan, None, False)


def test_the_api_checks_what_it_is_sent(served: Served, project: Path) -> None:
    body = _body(project)
    damaged = {**body, "bundle_sha256": hashlib.sha256(b"other").hexdigest()}
    answer = served.call("POST", "/slipstream/deploys", role="op", json=damaged)
    assert answer.status_code == 400 and "damaged" in answer.json()["detail"]

    not_a_spec = {**body, "specs": ['{"dag_id": "x"}']}
    answer = served.call("POST", "/slipstream/deploys", role="op", json=not_a_spec)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][:3] == ["body", "specs", 0]

    spec = json.loads(body["specs"][0])
    reordered = {**body, "specs": [json.dumps(spec, indent=1)]}
    answer = served.call("POST", "/slipstream/deploys", role="op", json=reordered)
    assert answer.status_code == 400 and "canonical" in answer.json()["detail"]

    huge = b"\0" * (5 * 1024 * 1024 + 1)
    too_big = {
        **body,
        "bundle": base64.b64encode(huge).decode(),
        "bundle_sha256": hashlib.sha256(huge).hexdigest(),
    }
    answer = served.call("POST", "/slipstream/deploys", role="op", json=too_big)
    assert answer.status_code == 413 and "the limit is 5 MB" in answer.json()["detail"]


def test_another_tenants_dag_id_is_refused(served: Served, project: Path) -> None:
    (project / "dags" / "remote_hello.py").write_text(HELLO.format(dag_id="acme_only"))
    answer = served.call("POST", "/slipstream/deploys", role="op", json=_body(project))
    assert answer.status_code == 422
    assert "another tenant" in answer.json()["detail"][0]["msg"]
    assert served.call("GET", "/dags/acme_only", tenant="acme").status_code == 200


def test_an_api_that_cannot_record_the_refusal_still_gets_the_problems_shown(
    served: Served, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.cli import remote

    def refuse(self: Any, path: str, body: Any) -> Any:
        remote.fail(404, f"the API has no POST {path}", 2)

    monkeypatch.setattr(remote.Client, "post", refuse)
    (project / "dags" / "broken.py").write_text(BROKEN)
    result = deploy_cli(served, project)
    assert result.exit_code == 1
    assert "broken.py" in result.output and "nothing was deployed" in result.output
    assert "did not record these problems" in result.stderr
