"""An operator's clear and marks, on both stores: the run reruns what was cleared,
counters stay true, and a mark finishes or restates the run as Airflow would."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core.errors import IllegalTransition
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.scheduler.interventions import Interventions, run_instances
from chalicelib.sdk import DAG, task
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack

ATTEMPTS: dict[str, int] = {}


@pytest.fixture
def stack(store) -> Stack:
    ATTEMPTS.clear()
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def flaky_dag() -> DAG:
    """extract >> load >> report; load fails on its first try and has no retries."""
    with DAG("flaky", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
        extract = EmptyOperator(task_id="extract")

        @task
        def load() -> str:
            ATTEMPTS["load"] = ATTEMPTS.get("load", 0) + 1
            if ATTEMPTS["load"] == 1:
                raise RuntimeError("warehouse was down")
            return "loaded"

        report = EmptyOperator(task_id="report")
        extract >> load() >> report
    return dag


def _failed_run(stack: Stack):
    spec = stack.deploy(flaky_dag())
    run, _ = stack.scheduler.trigger("flaky")
    stack.settle()
    run = stack.store.get_run("flaky", run.run_id)
    assert run.state is DagRunState.FAILED
    assert stack.states("flaky", run.run_id) == {
        "extract": "success",
        "load": "failed",
        "report": "upstream_failed",
    }
    return spec, run


def test_clearing_a_failed_task_and_downstream_reruns_them_and_the_run_succeeds(
    stack: Stack,
) -> None:
    spec, run = _failed_run(stack)
    instances = {ti.task_id: ti for ti in run_instances(stack.scheduler, run, spec)}

    preview = Interventions(stack.scheduler).clear(
        run, spec, [instances["load"], instances["report"]], dry_run=True
    )
    assert [c.before.task_id for c in preview] == ["load", "report"]
    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.FAILED  # dry run

    Interventions(stack.scheduler).clear(
        run, spec, [instances["load"], instances["report"]], dry_run=False
    )
    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.QUEUED
    stack.settle()

    final = stack.store.get_run("flaky", run.run_id)
    assert final.state is DagRunState.SUCCESS
    assert stack.states("flaky", run.run_id) == dict.fromkeys(
        ("extract", "load", "report"), "success"
    )
    load = stack.store.get_instance("flaky", run.run_id, "load", -1)
    assert load.try_number == 2  # the cleared try's number carries on, as in Airflow
    progress = stack.store.run_progress("flaky", run.run_id)
    assert progress.finished == progress.total == 3


def test_marking_a_failed_task_success_clears_what_failed_below_it(stack: Stack) -> None:
    """Airflow's mark success: the failed task's upstream-failed downstream runs again."""
    spec, run = _failed_run(stack)
    instances = {ti.task_id: ti for ti in run_instances(stack.scheduler, run, spec)}

    changed = Interventions(stack.scheduler).mark(
        run, spec, [instances["load"]], TaskState.SUCCESS, dry_run=False
    )
    assert [c.before.task_id for c in changed] == ["load"]
    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.QUEUED
    stack.settle()

    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.SUCCESS
    assert set(stack.states("flaky", run.run_id).values()) == {"success"}
    assert ATTEMPTS["load"] == 1  # marked, not run again
    progress = stack.store.run_progress("flaky", run.run_id)
    assert progress.finished == progress.total and progress.failed_leaves == 0


def test_a_mark_with_nothing_failed_below_leaves_a_finished_run_as_it_is(stack: Stack) -> None:
    spec, run = _failed_run(stack)
    instances = {ti.task_id: ti for ti in run_instances(stack.scheduler, run, spec)}
    Interventions(stack.scheduler).mark(
        run, spec, [instances["report"]], TaskState.SUCCESS, dry_run=False
    )
    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.FAILED
    assert stack.states("flaky", run.run_id) == {
        "extract": "success",
        "load": "failed",
        "report": "success",
    }


def test_marking_a_running_run_failed_fails_running_tries_and_skips_the_rest(
    stack: Stack,
) -> None:
    spec = stack.deploy(flaky_dag())
    run, _ = stack.scheduler.trigger("flaky")
    # Start the run but hold its first try: nothing has run yet.
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    run = stack.store.get_run("flaky", run.run_id)
    assert run.state is DagRunState.RUNNING

    Interventions(stack.scheduler).set_run_state(run, spec, DagRunState.FAILED)

    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.FAILED
    states = stack.states("flaky", run.run_id)
    assert states["load"] == states["report"] == "skipped"
    assert states["extract"] in ("failed", "skipped")  # queued (failed) or not yet (skipped)
    stack.settle()  # the held try's worker finds its try taken and records nothing
    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.FAILED


def test_marking_a_running_run_success_marks_every_instance(stack: Stack) -> None:
    spec = stack.deploy(flaky_dag())
    run, _ = stack.scheduler.trigger("flaky")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    run = stack.store.get_run("flaky", run.run_id)

    Interventions(stack.scheduler).set_run_state(run, spec, DagRunState.SUCCESS)
    stack.settle()

    assert stack.store.get_run("flaky", run.run_id).state is DagRunState.SUCCESS
    assert set(stack.states("flaky", run.run_id).values()) == {"success"}
    assert ATTEMPTS.get("load", 0) == 0  # no try of load ran after the mark


def test_a_mark_is_checked_apart_from_the_engines_rules() -> None:
    from chalicelib.core.states import check_mark

    check_mark(TaskState.FAILED, TaskState.SUCCESS)
    check_mark(TaskState.RUNNING, TaskState.FAILED)
    with pytest.raises(IllegalTransition):
        check_mark(TaskState.SUCCESS, TaskState.SUCCESS)
    with pytest.raises(IllegalTransition):
        check_mark(TaskState.FAILED, TaskState.NONE)  # that is a clear, not a mark


def test_a_cleared_task_gets_its_retries_again(stack: Stack) -> None:
    """Airflow raises max_tries on clear: a task that used up its one retry fails
    once more after the clear and is retried, instead of failing for good."""
    with DAG("stubborn", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:

        @task(retries=1, retry_delay=dt.timedelta(seconds=5))
        def flaky() -> str:
            ATTEMPTS["flaky"] = ATTEMPTS.get("flaky", 0) + 1
            if ATTEMPTS["flaky"] < 4:
                raise RuntimeError(f"attempt {ATTEMPTS['flaky']} failed")
            return "done"

        flaky()
    spec = stack.deploy(dag)
    run, _ = stack.scheduler.trigger("stubborn")
    stack.settle()
    run = stack.store.get_run("stubborn", run.run_id)
    assert run.state is DagRunState.FAILED and ATTEMPTS["flaky"] == 2

    instances = run_instances(stack.scheduler, run, spec)
    Interventions(stack.scheduler).clear(run, spec, instances, dry_run=False)
    stack.settle()

    final = stack.store.get_run("stubborn", run.run_id)
    assert final.state is DagRunState.SUCCESS
    ti = stack.store.get_instance("stubborn", run.run_id, "flaky", -1)
    assert (ti.try_number, ti.retry_base, ATTEMPTS["flaky"]) == (4, 2, 4)


def test_clearing_a_chain_that_ran_reruns_every_task_through_the_hand_off(stack: Stack) -> None:
    """The hand-off dispatches a downstream try assuming the task never ran; after
    a clear it waits at a later try, so the worker whose claim loses decides it
    again instead of leaving it waiting for reconciliation."""
    with DAG("chain3", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
        a, b, c = (EmptyOperator(task_id=t) for t in ("a", "b", "c"))
        a >> b >> c
    spec = stack.deploy(dag)
    run, _ = stack.scheduler.trigger("chain3")
    stack.settle()
    run = stack.store.get_run("chain3", run.run_id)
    assert run.state is DagRunState.SUCCESS

    Interventions(stack.scheduler).clear(
        run, spec, run_instances(stack.scheduler, run, spec), dry_run=False
    )
    stack.settle()  # no tick: nothing waits for reconciliation of a stalled run

    assert stack.store.get_run("chain3", run.run_id).state is DagRunState.SUCCESS
    tries = {t: stack.store.get_instance("chain3", run.run_id, t, -1).try_number for t in "abc"}
    assert tries == {"a": 2, "b": 2, "c": 2}
