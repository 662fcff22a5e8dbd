"""The remote commands against the API served as ``slipstream dev`` serves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app
from tests.api.served import Served, serve

_register_commands()
runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("cli-api")) as running:
        yield running


def cli(served: Served, *args: str, role: str = "admin", tenant: str = "default") -> Any:
    env = {"SLIPSTREAM_API_URL": served.url, "SLIPSTREAM_API_KEY": served.keys[(tenant, role)]}
    return runner.invoke(app, list(args), env=env)


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dags_list_and_show(served: Served) -> None:
    listed = as_json(cli(served, "dags", "list", "--json"))
    assert "etl_hourly" in {d["dag_id"] for d in listed["dags"]}
    assert "acme_only" not in {d["dag_id"] for d in listed["dags"]}
    table = cli(served, "dags", "list")
    assert table.exit_code == 0 and "etl_hourly" in table.stdout
    shown = as_json(cli(served, "dags", "show", "etl_hourly", "--json"))
    assert shown["dag_id"] == "etl_hourly"
    assert "timetable_summary" in cli(served, "dags", "show", "etl_hourly").stdout


def test_pause_and_unpause(served: Served) -> None:
    assert as_json(cli(served, "dags", "pause", "branching", "--json"))["is_paused"] is True
    assert served.call("GET", "/dags/branching").json()["is_paused"] is True
    result = cli(served, "dags", "unpause", "branching")
    assert result.exit_code == 0 and "unpaused" in result.stdout
    assert served.call("GET", "/dags/branching").json()["is_paused"] is False


def test_trigger_wait_then_runs_and_tasks(served: Served) -> None:
    result = cli(
        served,
        "dags",
        "trigger",
        "etl_hourly",
        "--conf",
        '{"source": "cli"}',
        "--run-id",
        "cli_run_1",
        "--wait",
        "--timeout",
        "120",
        "--json",
    )
    run = as_json(result)
    assert run["dag_run_id"] == "cli_run_1" and run["state"] == "success"
    assert run["conf"] == {"source": "cli"}
    runs = as_json(cli(served, "runs", "list", "etl_hourly", "--json"))
    assert "cli_run_1" in {r["dag_run_id"] for r in runs["dag_runs"]}
    assert as_json(cli(served, "runs", "show", "etl_hourly", "cli_run_1", "--json"))["state"] == (
        "success"
    )
    waited = cli(served, "runs", "wait", "etl_hourly", "cli_run_1")
    assert waited.exit_code == 0 and "success" in waited.stdout
    tis = as_json(cli(served, "tasks", "list", "etl_hourly", "cli_run_1", "--json"))
    states = {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}
    assert states and set(states.values()) <= {"success", "skipped"}
    task_id = next(t for t, s in states.items() if s == "success")
    logs = cli(served, "tasks", "logs", "etl_hourly", "cli_run_1", task_id)
    assert logs.exit_code == 0, logs.output
    followed = cli(served, "tasks", "logs", "etl_hourly", "cli_run_1", task_id, "--follow")
    assert followed.exit_code == 0 and followed.stdout == logs.stdout


def test_trigger_without_wait_prints_the_run(served: Served) -> None:
    result = cli(served, "dags", "trigger", "branching", "--logical-date", "2024-03-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert "Triggered branching" in result.stdout


def test_pools_over_the_api(served: Served) -> None:
    assert cli(served, "pools", "set", "cli_pool", "2", role="op").exit_code == 0
    assert cli(served, "pools", "set", "cli_pool", "4", role="op").exit_code == 0  # resized
    rows = as_json(cli(served, "pools", "list", "--json", role="viewer"))
    assert {"pool": "cli_pool", "slots": 4, "used": 0} in rows
    assert cli(served, "pools", "delete", "cli_pool", role="op").exit_code == 0
    assert "cli_pool" not in {r["pool"] for r in as_json(cli(served, "pools", "list", "--json"))}


def test_connections_and_variables(served: Served) -> None:
    added = cli(
        served, "connections", "add", "cli_http", "--conn-type", "http", "--host", "example.org",
        "--password", "hunter2", role="op",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = as_json(cli(served, "connections", "list", "--json", role="op"))
    assert "cli_http" in {c["connection_id"] for c in listed["connections"]}
    got = cli(served, "connections", "get", "cli_http", role="op")
    assert got.exit_code == 0 and "example.org" in got.stdout and "hunter2" not in got.stdout
    assert cli(served, "connections", "delete", "cli_http", role="op").exit_code == 0
    assert cli(served, "connections", "get", "cli_http", role="op").exit_code == 2

    assert cli(served, "variables", "set", "cli_var", "one", role="op").exit_code == 0
    assert cli(served, "variables", "set", "cli_var", "two", role="op").exit_code == 0
    assert cli(served, "variables", "get", "cli_var", role="op").stdout == "two\n"
    listed_vars = as_json(cli(served, "variables", "list", "--json", role="op"))
    assert "cli_var" in {v["key"] for v in listed_vars["variables"]}
    assert cli(served, "variables", "delete", "cli_var", role="op").exit_code == 0
    assert cli(served, "variables", "get", "cli_var", role="op").exit_code == 2


def test_keys_over_the_api(served: Served) -> None:
    created = as_json(cli(served, "keys", "create", "--role", "viewer", "--name", "ci", "--json"))
    assert created["tenant"] == "default" and created["api_key"].startswith("ssk_")
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    assert served.call("GET", "/dags", role=None, headers=headers).status_code == 200
    listed = as_json(cli(served, "keys", "list", "--json"))
    assert created["key_id"] in {k["key_id"] for k in listed}
    other = cli(served, "keys", "create", "--role", "viewer", "--tenant", "acme")
    assert other.exit_code == 2 and "caller's tenant (default)" in other.stderr
    assert cli(served, "keys", "revoke", created["key_id"]).exit_code == 0
    assert served.call("GET", "/dags", role=None, headers=headers).status_code == 401


def test_errors_are_one_line_with_exit_codes(served: Served) -> None:
    missing = cli(served, "dags", "show", "no_such_dag")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: 404 ") and missing.stderr.count("\n") == 1
    forbidden = cli(served, "dags", "pause", "etl_hourly", role="viewer")
    assert forbidden.exit_code == 2 and forbidden.stderr.startswith("error: 403 ")
    bad_key = runner.invoke(
        app, ["dags", "list"], env={"SLIPSTREAM_API_URL": served.url, "SLIPSTREAM_API_KEY": "x"}
    )
    assert bad_key.exit_code == 2 and bad_key.stderr.startswith("error: 401 ")
    bad_conf = cli(served, "dags", "trigger", "etl_hourly", "--conf", "[1]")
    assert bad_conf.exit_code == 2 and "must be a JSON object" in bad_conf.stderr
    nowhere = runner.invoke(
        app, ["dags", "list", "--api-url", "http://127.0.0.1:9", "--api-key", "k"], env={}
    )
    assert nowhere.exit_code == 3 and nowhere.stderr.startswith("error: cannot reach ")
