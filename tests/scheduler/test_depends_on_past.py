"""depends_on_past on both stores: a run's task waits (NONE, nothing written,
nothing polled) while the previous run's instance has not succeeded, and is
woken by the event that changes it: the try finishing, an operator's mark
success, or a clear that lets it run again."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from chalicelib.core.backfill import BackfillError
from chalicelib.core.engine import PastChanged
from chalicelib.core.messages import WorkerMessage
from chalicelib.core.runs import DagRun
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.scheduler.interventions import Interventions, run_instances
from chalicelib.sdk import DAG, get_current_context, task
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack

D1 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
D2 = D1 + dt.timedelta(days=1)
FAIL_ONCE: set[str] = set()  # run ids whose load fails on its first try
TRIES: dict[str, int] = {}


@pytest.fixture
def stack(store) -> Stack:
    FAIL_ONCE.clear()
    TRIES.clear()
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 5, tzinfo=dt.UTC)))


def past_dag(*, wait_for_downstream: bool = False, schedule: str | None = None) -> DAG:
    """extract >> load >> report; load depends on its previous run."""
    with DAG("past", schedule=schedule, start_date=D1) as dag:
        extract = EmptyOperator(task_id="extract")

        @task(depends_on_past=True, wait_for_downstream=wait_for_downstream)
        def load() -> str:
            run_id = get_current_context()["run_id"]
            TRIES[run_id] = TRIES.get(run_id, 0) + 1
            if run_id in FAIL_ONCE and TRIES[run_id] == 1:
                raise RuntimeError("warehouse was down")
            return "loaded"

        report = EmptyOperator(task_id="report")
        extract >> load() >> report
    return dag


def two_runs(stack: Stack, **options: bool) -> tuple[DagRun, DagRun]:
    stack.deploy(past_dag(**options))
    first, _ = stack.scheduler.trigger("past", logical_date=D1)
    second, _ = stack.scheduler.trigger("past", logical_date=D2)
    return first, second


def held(run: DagRun, task_id: str, into: list[WorkerMessage]):
    """A ``drop`` for settle that keeps one task's invocation aside (a slow worker)."""

    def hold(message: WorkerMessage) -> bool:
        if message.run_id == run.run_id and message.task_id == task_id:
            into.append(message)
            return True
        return False

    return hold


def test_the_next_runs_task_waits_and_is_woken_when_the_previous_one_finishes(
    stack: Stack,
) -> None:
    first, second = two_runs(stack)
    slow: list[WorkerMessage] = []
    stack.settle(drop=held(first, "load", slow))

    assert len(slow) == 1  # dispatched, not yet run (a first try is claimed from NONE)
    assert stack.states("past", first.run_id)["load"] in ("none", "queued")
    assert stack.states("past", second.run_id) == {
        "extract": "success",
        "load": "none",  # waiting on the past: no state written, as Airflow shows it
        "report": "none",
    }
    assert not stack.queue.pending  # no timer, no polling: only the event wakes it

    stack.run_worker(slow[0])  # the previous run's load finishes ...
    stack.settle()  # ... and its hand-off wakes the next run's load
    for run in (first, second):
        assert stack.store.get_run("past", run.run_id).state is DagRunState.SUCCESS
    before = stack.store.get_instance("past", first.run_id, "load", -1)
    after = stack.store.get_instance("past", second.run_id, "load", -1)
    assert after.start_date >= before.end_date

    # the same wake delivered again (at-least-once) starts nothing
    spec = stack.scheduler.specs.get("past", second.version)
    running = replace(stack.store.get_run("past", second.run_id), state=DagRunState.RUNNING)
    assert stack.scheduler.advance(running, spec, PastChanged(("load",))) == []
    assert not stack.executor.invocations and TRIES[second.run_id] == 1


def test_a_failed_past_keeps_the_task_waiting_until_marked_success(stack: Stack) -> None:
    first, second = two_runs(stack)
    FAIL_ONCE.add(first.run_id)
    stack.settle()
    assert stack.store.get_run("past", first.run_id).state is DagRunState.FAILED
    assert stack.states("past", second.run_id)["load"] == "none"
    assert stack.store.get_run("past", second.run_id).state is DagRunState.RUNNING

    spec = stack.scheduler.specs.get("past", first.version)
    load = next(t for t in run_instances(stack.scheduler, first, spec) if t.task_id == "load")
    Interventions(stack.scheduler).mark(first, spec, [load], TaskState.SUCCESS, dry_run=False)
    stack.settle()

    assert stack.states("past", second.run_id) == dict.fromkeys(
        ("extract", "load", "report"), "success"
    )
    assert TRIES[second.run_id] == 1 and TRIES[first.run_id] == 1  # the mark ran nothing


def test_clearing_the_failed_past_reruns_it_and_then_wakes_the_next_run(stack: Stack) -> None:
    first, second = two_runs(stack)
    FAIL_ONCE.add(first.run_id)
    stack.settle()
    assert stack.states("past", second.run_id)["load"] == "none"

    spec = stack.scheduler.specs.get("past", first.version)
    failed = [
        t for t in run_instances(stack.scheduler, first, spec) if t.task_id in ("load", "report")
    ]
    Interventions(stack.scheduler).clear(first, spec, failed, dry_run=False)
    stack.settle()

    assert TRIES[first.run_id] == 2
    for run in (first, second):
        assert stack.store.get_run("past", run.run_id).state is DagRunState.SUCCESS


def test_wait_for_downstream_wakes_when_the_previous_runs_downstream_finishes(
    stack: Stack,
) -> None:
    first, second = two_runs(stack, wait_for_downstream=True)
    slow: list[WorkerMessage] = []
    stack.settle(drop=held(first, "report", slow))

    assert len(slow) == 1 and stack.states("past", first.run_id)["load"] == "success"
    assert stack.states("past", second.run_id)["load"] == "none"  # report has not run there

    stack.run_worker(slow[0])
    stack.settle()
    assert stack.states("past", second.run_id) == dict.fromkeys(
        ("extract", "load", "report"), "success"
    )


def test_the_previous_run_is_found_by_logical_date_not_by_creation(stack: Stack) -> None:
    stack.deploy(past_dag())
    later, _ = stack.scheduler.trigger("past", logical_date=D2)  # created first
    earlier, _ = stack.scheduler.trigger("past", logical_date=D1)
    slow: list[WorkerMessage] = []
    stack.settle(drop=held(earlier, "load", slow))
    assert stack.states("past", later.run_id)["load"] == "none"
    stack.run_worker(slow[0])
    stack.settle()
    assert stack.store.get_run("past", later.run_id).state is DagRunState.SUCCESS


def test_runs_by_logical_date_reads_the_neighbours(stack: Stack) -> None:
    first, second = two_runs(stack)
    third, _ = stack.scheduler.trigger("past", logical_date=D2 + dt.timedelta(days=1))
    store = stack.store
    assert [r.run_id for r in store.runs_by_logical_date("past", before=D2)] == [first.run_id]
    assert [r.run_id for r in store.runs_by_logical_date("past", after=D1, limit=5)] == [
        second.run_id,
        third.run_id,
    ]
    assert store.runs_by_logical_date("past", before=D1) == []
    assert store.runs_by_logical_date("other", after=D1) == []


def test_a_backfill_runs_its_dates_in_order_and_its_first_run_ignores_the_past(
    stack: Stack,
) -> None:
    stack.deploy(past_dag(schedule="@daily"))
    before, _ = stack.scheduler.trigger("past", logical_date=D1 - dt.timedelta(days=1))
    FAIL_ONCE.add(before.run_id)
    stack.settle()
    assert stack.states("past", before.run_id)["load"] == "failed"

    backfills = stack.scheduler.backfills
    backfills.create("past", D1, D1 + dt.timedelta(days=3), max_active_runs=4)
    runs = sorted(
        (r for r in stack.store.backfills.runs_between("past", D1, stack.clock()) if r.backfill_id),
        key=lambda r: r.logical_date,
    )
    assert len(runs) == 4
    slow: list[WorkerMessage] = []
    stack.settle(drop=held(runs[0], "load", slow))  # the first date's load is slow
    assert len(slow) == 1  # it ran although the run before it failed (first of the backfill)
    assert [stack.states("past", r.run_id)["load"] for r in runs[1:]] == ["none"] * 3

    stack.run_worker(slow[0])
    stack.settle()  # each date's load wakes the next date's: no deadlock, in date order
    assert all(stack.store.get_run("past", r.run_id).state is DagRunState.SUCCESS for r in runs)
    assert [run_id for run_id in TRIES if run_id != before.run_id] == [r.run_id for r in runs]


def test_a_backward_backfill_of_a_depends_on_past_dag_is_refused(stack: Stack) -> None:
    stack.deploy(past_dag(schedule="@daily"))
    with pytest.raises(BackfillError, match="cannot be run in reverse"):
        stack.scheduler.backfills.create("past", D1, D2, run_backwards=True)


def test_marking_the_previous_run_success_wakes_the_next_run(stack: Stack) -> None:
    first, second = two_runs(stack)
    FAIL_ONCE.add(first.run_id)
    stack.settle()
    assert stack.states("past", second.run_id)["load"] == "none"

    spec = stack.scheduler.specs.get("past", first.version)
    failed = stack.store.get_run("past", first.run_id)
    Interventions(stack.scheduler).set_run_state(failed, spec, DagRunState.SUCCESS)
    stack.settle()

    assert stack.store.get_run("past", second.run_id).state is DagRunState.SUCCESS
