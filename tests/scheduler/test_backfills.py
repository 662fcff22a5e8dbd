"""Backfills run by the scheduler: runs of type backfill, created a few at a
time under the backfill's own max_active_runs, on both state stores."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
import pytest

from chalicelib.core.backfill import ReprocessBehavior, SkipReason
from chalicelib.core.runs import RunType
from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG
from chalicelib.store.backfills import ActiveBackfillExists, Backfill
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack

UTC = dt.UTC


def at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, hour, tzinfo=UTC)


@pytest.fixture
def stack(store) -> Stack:
    stack = Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 2, 0, 30, tzinfo=UTC)))
    with DAG(
        "hourly",
        schedule="@hourly",
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
    ) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag, paused=True)  # only the backfill makes runs
    return stack


def backfill_runs(stack: Stack) -> dict[str, Any]:
    runs = stack.store.backfills.runs_between("hourly", at(0), at(23))
    return {r.run_id: r for r in runs if r.run_type is RunType.BACKFILL}


def start_queued(stack: Stack) -> None:
    """Deliver the pending queue messages only (no worker runs)."""
    while stack.queue.pending:
        message, _ = stack.queue.pending.pop(0)
        stack.scheduler.handle(message)


def test_backfill_runs_every_date_within_its_max_active_runs(stack: Stack) -> None:
    backfill = stack.scheduler.backfills.create(
        "hourly", at(0), at(5), conf={"x": 1}, max_active_runs=2
    )
    assert backfill.id == 1 and backfill.cursor == 2 and backfill.completed_at is None
    assert sorted(backfill_runs(stack)) == [
        "backfill__2024-01-01T00:00:00+00:00",
        "backfill__2024-01-01T01:00:00+00:00",
    ]
    # the DAG's own max_active_runs (1) does not hold back backfill runs; the backfill's (2) does
    start_queued(stack)
    assert [r.state for r in backfill_runs(stack).values()] == [DagRunState.RUNNING] * 2
    stack.settle()
    runs = backfill_runs(stack)
    assert len(runs) == 6
    assert all(r.state is DagRunState.SUCCESS for r in runs.values())
    first = runs["backfill__2024-01-01T00:00:00+00:00"]
    assert first.conf == {"x": 1} and first.backfill_id == 1
    # Airflow 3's trigger timetable: the interval of a run is its logical date
    assert (first.data_interval_start, first.data_interval_end) == (at(0), at(0))
    done = stack.store.backfills.get(1)
    assert done.completed_at is not None and done.cursor == 6


def test_run_backwards_creates_the_latest_date_first(stack: Stack) -> None:
    stack.scheduler.backfills.create("hourly", at(0), at(2), max_active_runs=1, run_backwards=True)
    assert list(backfill_runs(stack)) == ["backfill__2024-01-01T02:00:00+00:00"]


def test_a_paused_backfill_starts_nothing_until_unpaused(stack: Stack) -> None:
    backfills = stack.scheduler.backfills
    backfill = backfills.create("hourly", at(0), at(3), max_active_runs=1)
    assert backfills.pause(backfill.id).is_paused
    stack.settle()
    runs = backfill_runs(stack)
    assert [r.state for r in runs.values()] == [DagRunState.QUEUED]  # held, not started
    assert stack.scheduler.tick().runs_created == []
    assert not backfills.unpause(backfill.id).is_paused
    stack.settle()
    assert len(backfill_runs(stack)) == 4
    assert stack.store.backfills.get(backfill.id).completed_at is not None


def test_cancel_fails_queued_runs_and_completes_the_backfill(stack: Stack) -> None:
    backfills = stack.scheduler.backfills
    backfill = backfills.create("hourly", at(0), at(5), max_active_runs=2)
    cancelled = backfills.cancel(backfill.id)
    assert cancelled.completed_at is not None and cancelled.is_paused
    stack.settle()
    assert [r.state for r in backfill_runs(stack).values()] == [DagRunState.FAILED] * 2
    assert stack.scheduler.tick().runs_created == []
    assert len(backfill_runs(stack)) == 2
    with pytest.raises(Exception, match="already completed"):
        backfills.cancel(backfill.id)


def test_one_active_backfill_per_dag(stack: Stack) -> None:
    backfills = stack.scheduler.backfills
    first = backfills.create("hourly", at(0), at(1), max_active_runs=1)
    with pytest.raises(ActiveBackfillExists):
        backfills.create("hourly", at(2), at(3))
    stack.settle()
    assert stack.store.backfills.get(first.id).completed_at is not None
    second = backfills.create("hourly", at(2), at(3))
    assert second.id == 2
    page, total = stack.store.backfills.list_for_dag("hourly", limit=10, offset=0)
    assert [b.id for b in page] == [1, 2] and total == 2


def test_dates_with_runs_are_skipped_by_reprocess_behavior(stack: Stack) -> None:
    stack.scheduler.trigger("hourly", logical_date=at(1))
    stack.settle()
    plan = stack.scheduler.backfills.plan("hourly", at(0), at(2))
    assert [i.logical_date for i in plan.runs] == [at(0), at(2)]
    assert [(s.logical_date, s.reason) for s in plan.skipped] == [
        (at(1), SkipReason.ALREADY_EXISTS)
    ]
    plan = stack.scheduler.backfills.plan(
        "hourly", at(0), at(2), reprocess=ReprocessBehavior.COMPLETED
    )
    assert plan.skipped == () and [i.logical_date for i in plan.runs] == [at(0), at(1), at(2)]
    backfill = stack.scheduler.backfills.create("hourly", at(0), at(2))
    assert backfill.dates == (at(0), at(2))


def test_the_tick_advances_a_backfill_whose_first_runs_were_never_made(stack: Stack) -> None:
    now = stack.clock()
    stack.store.backfills.create(
        Backfill(
            dag_id="hourly",
            from_date=at(0),
            to_date=at(1),
            reprocess_behavior=ReprocessBehavior.NONE,
            max_active_runs=5,
            created_at=now,
            updated_at=now,
            dates=(at(0), at(1)),
        )
    )
    assert len(stack.scheduler.tick().runs_created) == 2
    assert stack.scheduler.tick().runs_created == []
    stack.settle()
    stack.scheduler.tick()
    assert stack.store.backfills.active_ids() == []


def test_reprocess_completed_clears_an_earlier_backfills_runs_and_runs_them_again(
    stack: Stack,
) -> None:
    first = stack.scheduler.backfills.create("hourly", at(0), at(1))
    stack.settle()
    assert stack.store.backfills.get(first.id).completed_at is not None
    before = backfill_runs(stack)
    assert {r.state for r in before.values()} == {DagRunState.SUCCESS}

    dry = stack.scheduler.backfills.plan(
        "hourly", at(0), at(2), reprocess=ReprocessBehavior.COMPLETED
    )
    assert [i.logical_date for i in dry.runs] == [at(0), at(1), at(2)]
    second = stack.scheduler.backfills.create(
        "hourly", at(0), at(2), reprocess=ReprocessBehavior.COMPLETED
    )
    stack.settle()

    runs = backfill_runs(stack)
    assert len(runs) == 3  # the two earlier runs ran again, one new
    assert all(r.state is DagRunState.SUCCESS for r in runs.values())
    assert {r.backfill_id for r in runs.values()} == {second.id}
    again = stack.store.get_instance("hourly", "backfill__2024-01-01T00:00:00+00:00", "b", -1)
    assert again.try_number == 2  # cleared and run a second time
    assert stack.store.backfills.get(second.id).completed_at is not None


def test_reprocess_failed_leaves_successful_dates_alone(stack: Stack) -> None:
    stack.scheduler.backfills.create("hourly", at(0), at(0))
    stack.settle()
    plan = stack.scheduler.backfills.plan(
        "hourly", at(0), at(1), reprocess=ReprocessBehavior.FAILED
    )
    assert [i.logical_date for i in plan.runs] == [at(1)]
    assert [s.reason for s in plan.skipped] == [SkipReason.ALREADY_EXISTS]
