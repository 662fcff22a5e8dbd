"""Every example DAG validates and runs to success with `dags test`."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.loader import load_dags

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"


def test_examples_load_without_problems() -> None:
    loaded = load_dags([str(DAGS_DIR)])
    assert loaded.problems == []
    assert {"etl_hourly", "branching", "mapped_fanout", "s3_ingest"} <= set(loaded.dags)


@pytest.mark.parametrize("dag_id", ["etl_hourly", "branching", "mapped_fanout", "s3_ingest"])
def test_example_runs_to_success(dag_id: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_DEMO_OUT", str(tmp_path))
    dag = load_dags([str(DAGS_DIR)]).dags[dag_id]
    result = run_dag_test(dag, show=False, logical_date="2024-06-01T06:00:00+00:00")
    assert result.state == "success", result.errors
    if dag_id == "etl_hourly":
        assert result.tries["wait_for_source"] == 2  # the retry the example shows
        assert (tmp_path / "20240601.csv").read_text().count("plant-7") == 1
    if dag_id == "branching":
        # 2024-06-01 is a Saturday: the weekend path runs, the weekday one is skipped
        assert result.task_states["weekend_report"] == "success"
        assert result.task_states["weekday_report"] == "skipped"
        assert result.task_states["publish"] == "success"
    if dag_id == "mapped_fanout":
        assert sum(1 for k in result.task_states if k.startswith("process[")) == 8
