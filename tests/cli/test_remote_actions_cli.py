"""Commands whose endpoints others are still building (clear, mark) and answers
the real API rarely gives, against a fake API that records what it was sent.

The paths and bodies are Airflow 3's, so these commands work once the real
routes land (and against Airflow itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app
from tests.cli.fake_api import FakeApi, fake_api

_register_commands()
runner = CliRunner()
RUN = "/api/v2/dags/etl/dagRuns/manual__2024-01-01T00:00:00+00:00"
RUN_QUOTED = "/api/v2/dags/etl/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00"
RUN_ID = "manual__2024-01-01T00:00:00+00:00"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with fake_api() as running:
        yield running


def cli(api: FakeApi, *args: str) -> Any:
    env = {"SLIPSTREAM_API_URL": api.url + "/api/v2", "SLIPSTREAM_API_KEY": "ssk_a_b"}
    return runner.invoke(app, list(args), env=env)


def run(state: str) -> dict[str, Any]:
    return {"dag_run_id": RUN_ID, "dag_id": "etl", "state": state}


def test_runs_clear(api: FakeApi) -> None:
    api.answer("POST", RUN_QUOTED + "/clear", (200, run("queued")))
    result = cli(api, "runs", "clear", "etl", RUN_ID)
    assert result.exit_code == 0, result.output
    (sent,) = api.requests
    assert (sent.method, sent.path, sent.body) == (
        "POST",
        RUN_QUOTED + "/clear",
        {"dry_run": False},
    )
    assert sent.authorization == "Bearer ssk_a_b"


@pytest.mark.parametrize("state", ["failed", "success"])
def test_runs_mark(api: FakeApi, state: str) -> None:
    api.answer("PATCH", RUN_QUOTED, (200, run(state)))
    result = cli(api, "runs", f"mark-{state}", "etl", RUN_ID)
    assert result.exit_code == 0, result.output
    (sent,) = api.requests
    assert sent.method == "PATCH" and sent.path.startswith(RUN_QUOTED + "?")
    assert sent.body == {"state": state}


def test_tasks_clear(api: FakeApi) -> None:
    api.answer("POST", "/api/v2/dags/etl/clearTaskInstances", (200, {"task_instances": [{}, {}]}))
    result = cli(api, "tasks", "clear", "etl", RUN_ID, "extract", "load", "--downstream")
    assert result.exit_code == 0, result.output
    assert "cleared 2 task instances" in result.stdout
    (sent,) = api.requests
    assert sent.body == {
        "dag_run_id": RUN_ID,
        "task_ids": ["extract", "load"],
        "dry_run": False,
        "only_failed": False,
        "include_downstream": True,
    }


def test_wait_polls_until_failed_and_exits_1(api: FakeApi) -> None:
    api.answer("GET", RUN_QUOTED, (200, run("queued")), (200, run("running")), (200, run("failed")))
    result = cli(api, "runs", "wait", "etl", RUN_ID, "--timeout", "30", "--json")
    assert result.exit_code == 1
    assert '"state": "failed"' in result.stdout
    assert [r.method for r in api.requests] == ["GET", "GET", "GET"]


def test_wait_gives_up_at_the_deadline(api: FakeApi) -> None:
    api.answer("GET", RUN_QUOTED, (200, run("running")))
    result = cli(api, "runs", "wait", "etl", RUN_ID, "--timeout", "0")
    assert result.exit_code == 1
    assert result.stderr == "error: run is still running after 0s\n"


def test_a_5xx_is_exit_3(api: FakeApi) -> None:
    api.answer("GET", "/api/v2/dags", (503, {"detail": "Service Unavailable"}))
    result = cli(api, "dags", "list")
    assert result.exit_code == 3
    assert result.stderr == "error: 503 Service Unavailable\n"


def test_validation_errors_are_one_line(api: FakeApi) -> None:
    detail = [{"loc": ["body", "slots"], "msg": "Input should be a valid integer"}]
    api.answer("PATCH", "/api/v2/pools/p", (422, {"detail": detail}))
    result = cli(api, "pools", "set", "p", "3")
    assert result.exit_code == 2
    assert result.stderr == "error: 422 body.slots: Input should be a valid integer\n"


def test_an_unknown_route_is_named_and_the_key_never_shown(api: FakeApi) -> None:
    gateway = {
        "message": "Authorization header requires 'Credential'. Authorization=Bearer ssk_a_b"
    }
    api.answer("POST", RUN_QUOTED + "/clear", (403, gateway))
    result = cli(api, "runs", "clear", "etl", RUN_ID)
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: 404 the API has no POST {RUN_QUOTED}/clear; is it older than this CLI?\n"
    )
    assert "ssk_a_b" not in result.output


def test_logs_follow_until_the_try_ends(api: FakeApi) -> None:
    ti = "/api/v2/dags/etl/dagRuns/r1/taskInstances/extract"
    lines = [{"event": f"line {n}"} for n in range(4)]
    api.answer(
        "GET",
        ti + "/logs/1",
        (200, {"content": lines[:1], "continuation_token": None}),
        (200, {"content": lines[:2], "continuation_token": "t1"}),
        (200, {"content": lines[2:3], "continuation_token": "t1"}),
        (200, {"content": lines[2:4], "continuation_token": None}),
    )
    api.answer(
        "GET",
        ti,
        (200, {"try_number": 1, "state": "running"}),
        (200, {"try_number": 1, "state": "running"}),
        (200, {"try_number": 1, "state": "success"}),
    )
    result = cli(api, "tasks", "logs", "etl", "r1", "extract", "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["line 0", "line 1", "line 2", "line 3"]
