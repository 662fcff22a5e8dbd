"""``dags next-runs`` / ``dags due`` on a DAG scheduled on assets: what it waits for."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app

DAG_FILE = """
import pendulum
from chalicelib.sdk import DAG, Asset
from operators.empty import EmptyOperator

with DAG("joined", schedule=Asset("s3://lake/a") & (Asset("s3://lake/b") | Asset("s3://lake/c")),
         start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    EmptyOperator(task_id="go")
"""


@pytest.fixture
def dag_file(tmp_path: Path) -> str:
    path = tmp_path / "joined.py"
    path.write_text(textwrap.dedent(DAG_FILE))
    return str(path)


def _run(*args: str) -> tuple[int, str]:
    _register_commands()
    result = CliRunner().invoke(app, ["dags", *args])
    return result.exit_code, result.output


def test_due_names_the_assets_queued_and_missing(dag_file: str) -> None:
    code, out = _run("due", dag_file, "joined", "--now", "2024-05-01", "--queued", "S3://lake/b/")
    assert code == 0, out
    assert "runs when s3://lake/a & (s3://lake/b | s3://lake/c)" in out
    assert "Nothing is due" in out
    assert "events queued: s3://lake/b" in out
    assert "waiting for:   s3://lake/a, s3://lake/c" in out


def test_due_when_the_queued_events_meet_the_condition(dag_file: str) -> None:
    code, out = _run(
        "due", dag_file, "joined", "--now", "2024-05-01",
        "--queued", "s3://lake/a", "--queued", "s3://lake/c", "--json",
    )  # fmt: skip
    assert code == 0, out
    (record,) = json.loads(out)
    assert record["due"] is True
    assert record["queued"] == ["s3://lake/a", "s3://lake/c"]
    assert record["missing"] == ["s3://lake/b"]


def test_next_runs_without_events_waits_for_every_asset(dag_file: str) -> None:
    code, out = _run("next-runs", dag_file, "joined")
    assert code == 0, out
    assert "events queued: none" in out
    assert "waiting for:   s3://lake/a, s3://lake/b, s3://lake/c" in out


def test_a_bad_queued_uri_is_one_line(dag_file: str) -> None:
    code, out = _run("due", dag_file, "joined", "--now", "2024-05-01", "--queued", "airflow://x")
    assert code == 2
    assert "--queued 'airflow://x': Asset scheme 'airflow' is reserved" in out
    assert "Traceback" not in out
