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


def test_backfill_create_follows_until_every_run_ended(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.cli import backfill

    monkeypatch.setattr(backfill, "POLL_SECONDS", 0.2)
    window = ["--from-date", "2024-05-01", "--to-date", "2024-05-03T00:00:00Z"]
    dry = as_json(
        cli(served, "backfill", "create", "mapped_fanout", *window, "--dry-run", "--json")
    )
    assert [d["logical_date"][:10] for d in dry["backfills"]] == [
        "2024-05-01", "2024-05-02", "2024-05-03",
    ]  # fmt: skip
    assert as_json(cli(served, "backfill", "list", "mapped_fanout", "--json"))["total_entries"] == 0
    result = cli(
        served,
        "backfill",
        "create",
        "mapped_fanout",
        *window,
        "--max-active-runs",
        "2",
        "--dag-run-conf",
        '{"partitions": 2}',
        "--timeout",
        "180",
        "--json",
    )
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["completed_at"] is not None and done["max_active_runs"] == 2
    assert "3 runs planned: 3 succeeded, 0 failed" in result.stderr
    runs = served.call("GET", "/dags/mapped_fanout/dagRuns", params={"run_type": "backfill"}).json()
    assert {r["conf"]["partitions"] for r in runs["dag_runs"]} == {2}
    assert {r["state"] for r in runs["dag_runs"]} == {"success"}
    listed = cli(served, "backfill", "list", "mapped_fanout")
    assert listed.exit_code == 0 and str(done["id"]) in listed.stdout


def test_backfill_no_wait_then_pause_unpause_cancel(served: Served) -> None:
    created = as_json(
        cli(
            served,
            "backfill",
            "create",
            "etl_hourly",
            "--from-date",
            "2024-06-01T00:00",
            "--to-date",
            "2024-06-01T20:00",
            "--max-active-runs",
            "1",
            "--no-wait",
            "--json",
        )
    )
    backfill_id = str(created["id"])
    assert created["completed_at"] is None
    assert as_json(cli(served, "backfill", "pause", backfill_id, "--json"))["is_paused"] is True
    assert "unpaused" in cli(served, "backfill", "unpause", backfill_id).stdout
    cancelled = cli(served, "backfill", "cancel", backfill_id)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
    shown = as_json(cli(served, "backfill", "show", backfill_id, "--json"))
    assert shown["completed_at"] is not None
    again = cli(served, "backfill", "cancel", backfill_id)
    assert again.exit_code == 2 and again.stderr.startswith("error: 409")
    assert len(again.stderr.strip().splitlines()) == 1


def test_backfill_bad_input_is_one_line(served: Served) -> None:
    bad_date = cli(
        served, "backfill", "create", "mapped_fanout", "--from-date", "May 1", "--to-date", "x"
    )
    assert bad_date.exit_code == 2 and "--from-date: not an ISO 8601" in bad_date.stderr
    unknown = cli(
        served, "backfill", "create", "nope", "--from-date", "2024-01-01", "--to-date", "2024-01-02"
    )
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error: 404")
    viewer = cli(
        served,
        "backfill",
        "create",
        "mapped_fanout",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-02",
        role="viewer",
    )
    assert viewer.exit_code == 2 and viewer.stderr.startswith("error: 403")
