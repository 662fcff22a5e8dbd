"""max_active_tis_per_dag on the deployed scheduler (per dagrun: test_map_windows)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack


@pytest.fixture
def stack(store) -> Stack:
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def start_queued(stack: Stack) -> None:
    """Deliver the pending queue messages only: runs start, no worker runs."""
    while stack.queue.pending:
        message, _ = stack.queue.pending.pop(0)
        stack.scheduler.handle(message)


def test_max_active_tis_per_dag_holds_a_task_to_one_instance_across_runs(stack: Stack) -> None:
    with DAG("exclusive", max_active_runs=3) as dag:
        EmptyOperator(task_id="load", max_active_tis_per_dag=1)
        EmptyOperator(task_id="free")
    stack.deploy(dag)
    runs = []
    for _ in range(3):
        runs.append(stack.scheduler.trigger("exclusive")[0])
        stack.clock.advance(1)  # manual runs a second apart: three logical dates
    start_queued(stack)
    loads = Counter(stack.states("exclusive", run.run_id)["load"] for run in runs)
    frees = Counter(stack.states("exclusive", run.run_id)["free"] for run in runs)
    assert loads == {"queued": 1, "scheduled": 2}  # two wait for the one slot
    assert frees == {"queued": 3}
    assert stack.store.used("task:exclusive:load") == 1
    stack.settle()
    for run in runs:
        assert stack.store.get_run("exclusive", run.run_id).state is DagRunState.SUCCESS
    assert stack.store.used("task:exclusive:load") == 0
