"""``dags next-runs`` / ``dags due`` load the real DAG file: the scheduler settings apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app
from chalicelib.sdk.scheduler_settings import CATCHUP_BY_DEFAULT, CRON_DATA_INTERVALS

NIGHTLY = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("nightly", schedule="0 2 * * *", start_date=dt.datetime(2024, 3, 1, tzinfo=dt.UTC)):
    EmptyOperator(task_id="work")
"""


@pytest.fixture
def dag_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv(CRON_DATA_INTERVALS, raising=False)
    monkeypatch.delenv(CATCHUP_BY_DEFAULT, raising=False)
    path = tmp_path / "nightly.py"
    path.write_text(NIGHTLY)
    return str(path)


def _runs(*args: str) -> list[dict[str, str]]:
    _register_commands()
    result = CliRunner().invoke(app, ["dags", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_next_runs_are_trigger_ticks_by_default(dag_file: str) -> None:
    runs = _runs(
        "next-runs", dag_file, "nightly", "--after", "2024-03-08T12:00:00Z", "--count", "1"
    )
    assert [
        (r["logical_date_utc"], r["data_interval_end_utc"], r["run_after_utc"]) for r in runs
    ] == [("2024-03-09T02:00:00+00:00", "2024-03-09T02:00:00+00:00", "2024-03-09T02:00:00+00:00")]


def test_next_runs_honour_the_data_interval_setting(
    dag_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CRON_DATA_INTERVALS, "True")
    runs = _runs(
        "next-runs", dag_file, "nightly", "--after", "2024-03-08T12:00:00Z", "--count", "1"
    )
    assert [(r["logical_date_utc"], r["run_after_utc"]) for r in runs] == [
        ("2024-03-08T02:00:00+00:00", "2024-03-09T02:00:00+00:00")
    ]


def test_due_honours_catchup_by_default(dag_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    window = ("due", dag_file, "nightly", "--now", "2024-03-04T12:00:00Z")
    assert len(_runs(*window)) == 1  # Airflow 3: no catchup, the latest tick only
    monkeypatch.setenv(CATCHUP_BY_DEFAULT, "True")
    assert [r["logical_date_utc"][:10] for r in _runs(*window)] == [
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
        "2024-03-04",
    ]
