"""Clearing a task in a setup's scope on both stores: its setup and teardown run
again with it, through the worker's hand-off, with no tick to rescue a stall."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core.selection import tasks_to_clear
from chalicelib.core.states import DagRunState
from chalicelib.scheduler.interventions import Interventions, run_instances
from chalicelib.sdk import DAG, setup, task, teardown
from tests.scheduler.harness import FakeClock, Stack


@pytest.fixture
def stack(store) -> Stack:
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def scoped_dag() -> DAG:
    # max_active_tasks=1 gives every try a slot claim, so the hand-off queues the
    # next try with a conditional write instead of dispatching it directly.
    with DAG(
        "scoped", schedule=None, start_date=dt.datetime(2024, 1, 1), max_active_tasks=1
    ) as dag:

        @setup
        def create() -> str:
            return "r"

        @task
        def work(name: str) -> str:
            return name

        @teardown
        def delete(name: str) -> None:
            raise RuntimeError("cannot delete " + name)

        @task
        def outside(value: str) -> str:
            return value

        made = create()
        done = work(made)
        done >> delete(made)
        outside(done)
    return dag


def test_clearing_work_reruns_its_setup_and_teardown_only(stack: Stack) -> None:
    spec = stack.deploy(scoped_dag())
    run, _ = stack.scheduler.trigger("scoped")
    stack.settle()
    run = stack.store.get_run("scoped", run.run_id)
    assert run.state is DagRunState.SUCCESS  # only the teardown failed
    assert stack.states("scoped", run.run_id)["delete"] == "failed"

    chosen = tasks_to_clear(spec, ["work"], upstream=False, downstream=False)
    assert chosen == {"create", "work", "delete"}
    targets = [ti for ti in run_instances(stack.scheduler, run, spec) if ti.task_id in chosen]
    Interventions(stack.scheduler).clear(run, spec, targets, dry_run=False)
    stack.settle()  # no tick: a hand-off that guessed wrong must decide again itself

    tries = {
        t: stack.store.get_instance("scoped", run.run_id, t, -1).try_number
        for t in ("create", "work", "delete", "outside")
    }
    assert tries == {"create": 2, "work": 2, "delete": 2, "outside": 1}
    assert stack.store.get_run("scoped", run.run_id).state is DagRunState.SUCCESS
