"""Deadline alerts: judged by the tick over the deadlines due, fired once in a worker.

Against both stores (memory, DynamoDB on moto), with the fake clock: a run
still going at its deadline fires the callback once, however often the tick
runs or the callback's invoke is delivered; a run that finished in time never
does; a lost invoke is sent again and still runs once.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from chalicelib.core.deadlines import (
    DEADLINE_CALLBACK_TASK,
    REDISPATCH_AFTER,
    Deadline,
    DeadlineState,
)
from chalicelib.core.runs import DagRun
from chalicelib.executors.base import DispatchError
from chalicelib.sdk import (
    DAG,
    AsyncCallback,
    DeadlineAlert,
    DeadlineReference,
    SyncCallback,
    task,
)
from chalicelib.store.base import StateStore
from chalicelib.store.catalog import Catalog
from chalicelib.store.dynamodb import DynamoStateStore
from tests.scheduler.harness import FakeClock, Stack

NOW = dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)
CALLS: list[dict[str, Any]] = []


def notify(**kwargs: Any) -> None:
    CALLS.append(kwargs)


async def notify_async(**kwargs: Any) -> None:
    CALLS.append({"async": True, **kwargs})


@pytest.fixture
def stack(store: StateStore) -> Stack:
    CALLS.clear()
    return Stack(store=store, clock=FakeClock(NOW))


def deadline_dag(reference: Any, interval: dt.timedelta, callback: Any = None) -> DAG:
    alert = DeadlineAlert(
        reference=reference,
        interval=interval,
        callback=callback or SyncCallback(notify, kwargs={"team": "data"}),
    )
    with DAG("timed", deadline=alert) as dag:

        @task
        def work() -> None:
            pass

        work()
    return dag


def start_and_leave_running(stack: Stack, **trigger: Any) -> DagRun:
    """Trigger a run and handle its creation; its first try is dispatched and never
    comes back, as a try still running on a worker."""
    run, _ = stack.scheduler.trigger("timed", **trigger)
    message, _ = stack.queue.pending.pop(0)
    stack.scheduler.handle(message)
    stack.executor.invocations.clear()
    return run


def deadline_messages(stack: Stack) -> list[Any]:
    return [m for m in stack.executor.all if m.task_id == DEADLINE_CALLBACK_TASK]


def run_deadline_invocations(stack: Stack) -> None:
    for message in [m for m in stack.executor.invocations if m.task_id == DEADLINE_CALLBACK_TASK]:
        stack.run_worker(message)
    stack.executor.invocations.clear()


def missed_events(store: StateStore) -> list[dict[str, Any]]:
    events = getattr(store.deadlines, "events", None)
    if isinstance(events, list):
        return events
    model = store.models.event_log  # type: ignore[attr-defined]
    return [{"event": e.event, "run_id": e.run_id} for e in model.query("default")]


def test_a_run_unfinished_at_its_deadline_fires_the_callback_once(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_LOGICAL_DATE, dt.timedelta(minutes=30)))
    run = start_and_leave_running(stack)
    stack.clock.advance(29 * 60)
    assert stack.scheduler.tick().deadlines_missed == []
    assert deadline_messages(stack) == []

    stack.clock.advance(60)
    report = stack.scheduler.tick()
    assert report.deadlines_missed == [f"timed/{run.run_id}/deadline[0]"]
    run_deadline_invocations(stack)
    assert len(CALLS) == 1
    context = CALLS[0]["context"]
    assert CALLS[0]["team"] == "data"
    assert context["dag_run"]["dag_id"] == "timed"
    assert context["dag_run"]["dag_run_id"] == run.run_id
    assert context["deadline"]["deadline_time"] == NOW + dt.timedelta(minutes=30)
    assert context["deadline"]["id"] == f"timed/{run.run_id}/0"

    # Duplicate ticks, a re-sent message after the resend window, and a duplicate
    # delivery of the invoke: still one call.
    for _ in range(3):
        assert stack.scheduler.tick().deadlines_missed == []
    stack.clock.advance(REDISPATCH_AFTER.total_seconds() * 2)
    stack.scheduler.tick()
    stack.run_worker(deadline_messages(stack)[0])
    run_deadline_invocations(stack)
    assert len(CALLS) == 1
    assert len(deadline_messages(stack)) == 1
    (deadline,) = stack.store.deadlines.for_run("timed", run.run_id, 1)
    assert deadline.state is DeadlineState.MISSED and deadline.callback_claimed
    assert [e["event"] for e in missed_events(stack.store)] == ["deadline_missed"]


def test_a_run_that_finished_in_time_never_fires(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(minutes=10)))
    run, _ = stack.scheduler.trigger("timed")
    stack.settle()
    assert stack.store.get_run("timed", run.run_id).state.value == "success"
    stack.clock.advance(3600)
    assert stack.scheduler.tick().deadlines_missed == []
    stack.scheduler.tick()
    run_deadline_invocations(stack)
    assert CALLS == [] and deadline_messages(stack) == []
    (deadline,) = stack.store.deadlines.for_run("timed", run.run_id, 1)
    assert deadline.state is DeadlineState.MET
    assert stack.store.deadlines.due(stack.clock()) == []  # left the index


def test_a_run_that_finished_late_missed_its_deadline(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(minutes=10)))
    run, _ = stack.scheduler.trigger("timed")
    message, _ = stack.queue.pending.pop(0)
    stack.scheduler.handle(message)
    stack.clock.advance(20 * 60)  # the try comes back after the deadline
    stack.settle()
    assert stack.store.get_run("timed", run.run_id).state.value == "success"
    assert stack.scheduler.tick().deadlines_missed == [f"timed/{run.run_id}/deadline[0]"]
    run_deadline_invocations(stack)
    assert len(CALLS) == 1


def test_queued_at_counts_from_when_the_run_was_queued_not_its_logical_date(
    stack: Stack,
) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(minutes=10)))
    run = start_and_leave_running(stack, logical_date=NOW - dt.timedelta(days=3))
    (deadline,) = stack.store.deadlines.for_run("timed", run.run_id, 1)
    assert deadline.deadline_time == NOW + dt.timedelta(minutes=10)
    stack.clock.advance(9 * 60)
    assert stack.scheduler.tick().deadlines_missed == []
    stack.clock.advance(60)
    assert len(stack.scheduler.tick().deadlines_missed) == 1


def test_fixed_datetime_with_a_negative_interval_fires_before_the_reference(
    stack: Stack,
) -> None:
    meeting = NOW + dt.timedelta(hours=2)
    stack.deploy(
        deadline_dag(
            DeadlineReference.FIXED_DATETIME(meeting),
            dt.timedelta(minutes=-30),
            AsyncCallback(notify_async, kwargs={"room": "b"}),
        )
    )
    start_and_leave_running(stack)
    stack.clock.advance(89 * 60)
    assert stack.scheduler.tick().deadlines_missed == []
    stack.clock.advance(60)
    assert len(stack.scheduler.tick().deadlines_missed) == 1
    run_deadline_invocations(stack)
    assert len(CALLS) == 1 and CALLS[0]["async"] and CALLS[0]["room"] == "b"
    assert CALLS[0]["context"]["deadline"]["deadline_time"] == meeting - dt.timedelta(minutes=30)


def test_a_repeated_run_created_message_registers_the_deadline_once(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(minutes=10)))
    run, _ = stack.scheduler.trigger("timed")
    message, _ = stack.queue.pending.pop(0)
    stack.scheduler.handle(message)
    stack.clock.advance(120)
    stack.scheduler.handle(message)  # SQS delivered it again, later
    (deadline,) = stack.store.deadlines.for_run("timed", run.run_id, 1)
    assert deadline.deadline_time == NOW + dt.timedelta(minutes=10)  # the first one counts


def test_a_lost_callback_invoke_is_sent_again_and_runs_once(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_LOGICAL_DATE, dt.timedelta(minutes=5)))
    start_and_leave_running(stack)
    stack.clock.advance(6 * 60)
    original = stack.executor.dispatch

    def refuse(message: Any, spec: Any) -> Any:
        raise DispatchError("throttled")

    stack.executor.dispatch = refuse  # type: ignore[method-assign]
    assert len(stack.scheduler.tick().deadlines_missed) == 1  # marked, not sent
    stack.executor.dispatch = original  # type: ignore[method-assign]
    stack.scheduler.tick()
    assert deadline_messages(stack) == []  # within the resend window: waits
    stack.clock.advance(REDISPATCH_AFTER.total_seconds())
    stack.scheduler.tick()
    assert len(deadline_messages(stack)) == 1
    run_deadline_invocations(stack)
    stack.clock.advance(REDISPATCH_AFTER.total_seconds())
    stack.scheduler.tick()
    assert len(deadline_messages(stack)) == 1  # claimed: never sent again
    assert len(CALLS) == 1


def test_the_tick_reads_only_the_deadlines_that_are_due(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(hours=1)))
    for day in range(5):
        start_and_leave_running(stack, logical_date=NOW - dt.timedelta(days=day + 1))
    reads: list[str] = []
    get_run = stack.store.get_run

    def counting(dag_id: str, run_id: str) -> Any:
        reads.append(run_id)
        return get_run(dag_id, run_id)

    stack.store.get_run = counting  # type: ignore[method-assign]
    stack.scheduler.deadlines.tick(stack.clock())
    assert reads == []  # five pending deadlines, none due: no run is read
    assert stack.store.deadlines.due(stack.clock()) == []
    assert len(stack.store.deadlines.due(stack.clock() + dt.timedelta(hours=2))) == 5


def test_a_dag_without_deadlines_keeps_its_version_id() -> None:
    with DAG("plain") as dag:
        task(lambda: None, task_id="t")()
    assert "deadlines" not in json.loads(dag.to_spec().canonical_json())


def test_deadline_items_stay_out_of_the_dag_lists_and_the_dag_due_index(stack: Stack) -> None:
    """They share the dags table: neither the tick's due-DAG query nor a tenant's DAG
    list (the by_tenant index) may see them."""
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(minutes=1)))
    run = start_and_leave_running(stack)
    stack.store.deadlines.register(
        Deadline("timed", run.run_id, 1, NOW, tenant="default")  # one with a tenant
    )
    later = NOW + dt.timedelta(days=1)
    assert stack.store.due_dags(later) == []  # "timed" has no schedule
    assert len(stack.store.deadlines.due(later)) == 2
    if isinstance(stack.store, DynamoStateStore):
        page = Catalog(stack.store).list_dags("default", limit=10, offset=0)
        assert [r.dag_id for r in page.items] == ["timed"]


def test_a_deleted_runs_deadline_leaves_the_index_without_a_callback(stack: Stack) -> None:
    stack.deploy(deadline_dag(DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(minutes=1)))
    stack.store.deadlines.register(Deadline("timed", "gone", 0, NOW))
    stack.clock.advance(120)
    assert stack.scheduler.tick().deadlines_missed == []
    assert stack.store.deadlines.due(stack.clock()) == [] and deadline_messages(stack) == []
