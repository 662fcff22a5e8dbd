"""max_active_tis_per_dag and max_active_tis_per_dagrun on the deployed scheduler."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG, task
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


def test_max_active_tis_per_dagrun_caps_a_map_within_its_run(stack: Stack) -> None:
    with DAG("narrow_map", max_active_runs=1) as dag:

        @task(max_active_tis_per_dagrun=2)
        def work(x: int) -> int:
            return x

        work.expand(x=list(range(6)))
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("narrow_map")
    start_queued(stack)
    key = f"runtask:narrow_map#{run.run_id}:work"
    states = Counter(s for label, s in stack.states("narrow_map", run.run_id).items())
    # The first two indices start; the rest wait unstarted, each for a try
    # before it to finish (a window, core.map_window: no slot counter).
    assert states == {"queued": 2, "none": 4}
    assert stack.store.used(key) == 0
    stack.settle()
    assert stack.store.get_run("narrow_map", run.run_id).state is DagRunState.SUCCESS
    assert stack.store.used(key) == 0
