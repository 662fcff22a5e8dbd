"""depends_on_past on the local serverless stack (moto, the queue poller, warm
workers): of two scheduled runs created by one tick, the second run's task
starts only after the first run's has ended, though two workers are free."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from chalicelib import handlers, wiring
from chalicelib.core.states import DagRunState
from chalicelib.local.stack import LocalStack

DOP_DAG = """
import datetime as dt
import time

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator

def load():
    time.sleep(2)  # long enough that two runs' loads would overlap without the past

with DAG(
    "dop_e2e",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1),
    end_date=dt.datetime(2024, 1, 2),
    catchup=True,
):
    extract = EmptyOperator(task_id="extract")
    load_task = PythonOperator(task_id="load", python_callable=load, depends_on_past=True)
    extract >> load_task
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("dop_project")
    (project / "dags").mkdir()
    (project / "dags" / "dop_e2e.py").write_text(textwrap.dedent(DOP_DAG))
    with LocalStack(workers=2, tick_seconds=3600) as running:
        report = running.deploy(Path(project))
        assert report.ok, report.problems
        yield running


def test_the_second_scheduled_run_waits_for_the_first(stack: LocalStack) -> None:
    handlers.schedule_tick()  # one tick creates both due runs (catchup)
    store = wiring.state_store()
    runs = sorted(
        store.runs_by_logical_date(
            "dop_e2e", after=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), limit=10
        ),
        key=lambda r: r.logical_date,
    )
    assert [r.run_type.value for r in runs] == ["scheduled", "scheduled"]
    for run in runs:
        done = stack.wait_for_run("dop_e2e", run.run_id, timeout=120)
        assert done.state is DagRunState.SUCCESS
    first, second = (store.get_instance("dop_e2e", r.run_id, "load", -1) for r in runs)
    assert first is not None and second is not None
    assert first.end_date is not None and second.start_date is not None
    assert second.start_date >= first.end_date  # it waited for the previous run's load
