"""A map held to max_active_tasks or max_active_tis_per_dagrun runs through a
window (core.map_window): its tries take no slot, yet the limit holds."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.core.slots import dag_run_key, pool_key, run_task_key
from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG, task
from tests.aws_faults import AwsFaults
from tests.scheduler.harness import FakeClock, Stack, mapped_dag
from tests.store.conftest import make_dynamo_store, store_settings


@pytest.fixture
def stack(store) -> Stack:
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def unfinished_work(stack: Stack, dag_id: str, run_id: str) -> int:
    """Tries of ``work`` under way: invoked and not yet run, or queued/running/retrying."""
    pending = {m.map_index for m in stack.executor.invocations if m.task_id == "work"}
    states = stack.states(dag_id, run_id)
    stored = {
        int(label[5:-1])
        for label, state in states.items()
        if label.startswith("work[") and state not in ("none", "success", "failed")
    }
    return len(pending | stored)


def run_step_by_step(stack: Stack, dag_id: str) -> tuple[str, list[int]]:
    """Run the DAG one worker at a time, noting how many tries of the map were under way."""
    run, _ = stack.scheduler.trigger(dag_id)
    seen: list[int] = []
    for _ in range(500):
        if stack.executor.invocations:
            stack.run_worker(stack.executor.invocations.pop(0))
        elif stack.queue.pending:
            stack.queue.pending.sort(key=lambda item: item[1])
            message, delay = stack.queue.pending.pop(0)
            stack.clock.advance(delay)
            stack.scheduler.handle(message)
        else:
            break
        seen.append(unfinished_work(stack, dag_id, run.run_id))
    return run.run_id, seen


def test_max_active_tasks_holds_a_map_to_its_window_without_slots(stack: Stack) -> None:
    stack.deploy(mapped_dag("windowed", 12, fail_first_try_of=4, max_active_tasks=3))
    run_id, seen = run_step_by_step(stack, "windowed")
    assert stack.store.get_run("windowed", run_id).state is DagRunState.SUCCESS
    assert max(seen) == 3  # the limit is used, never exceeded
    assert stack.xcoms[("windowed", run_id)].pull("done", -1, "return_value") == (True, 66)
    # No counter was ever taken for the map's tries, so none is left behind.
    assert stack.store.used(dag_run_key("windowed", run_id)) == 0
    spec = stack.scheduler.specs.get("windowed", stack.store.get_run("windowed", run_id).version)
    summary = stack.store.run_view("windowed", run_id, spec).summaries(["work"])["work"]
    assert summary.window == 3 and summary.mapped_count == 12
    # index 4 retried in its place: 12 first tries and one retry, each started once
    starts = Counter((m.map_index, m.try_number) for m in stack.executor.all if m.task_id == "work")
    assert sorted(starts) == sorted([(i, 1) for i in range(12)] + [(4, 2)])


def test_max_active_tis_per_dagrun_is_a_window_too(stack: Stack) -> None:
    with DAG("narrow", max_active_runs=1) as dag:

        @task(max_active_tis_per_dagrun=2)
        def work(x: int) -> int:
            return x

        work.expand(x=list(range(7)))
    stack.deploy(dag)
    run_id, seen = run_step_by_step(stack, "narrow")
    assert stack.store.get_run("narrow", run_id).state is DagRunState.SUCCESS
    assert max(seen) == 2
    assert stack.store.used(run_task_key("narrow", run_id, "work")) == 0


def test_an_index_whose_start_was_lost_is_started_by_reconciliation(stack: Stack) -> None:
    stack.deploy(mapped_dag("lost", 8, max_active_tasks=2))
    run, _ = stack.scheduler.trigger("lost")
    dropped: list[int] = []

    def lose_index_5(message: Any) -> bool:
        if message.task_id == "work" and message.map_index == 5 and not dropped:
            dropped.append(5)  # its invoke never arrived
            return True
        return False

    stack.settle(drop=lose_index_5)
    assert dropped == [5]
    states = stack.states("lost", run.run_id)
    assert states["work[5]"] == "none" and states["done"] == "none"
    assert stack.store.get_run("lost", run.run_id).state is DagRunState.RUNNING
    stack.scheduler.tick()  # the run's progress is noted
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().runs_reconciled == [f"lost/{run.run_id}"]
    stack.settle()
    assert stack.store.get_run("lost", run.run_id).state is DagRunState.SUCCESS
    assert [m.map_index for m in stack.executor.all if m.task_id == "work"].count(5) == 2


def test_a_map_in_a_configured_pool_keeps_the_slot_counter(stack: Stack) -> None:
    stack.store.set_pool("narrow_pool", 2)
    with DAG("pooled", max_active_runs=1) as dag:

        @task(pool="narrow_pool")
        def work(x: int) -> int:
            return x

        work.expand(x=list(range(5)))
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("pooled")
    while stack.queue.pending:
        stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    states = Counter(s for s in stack.states("pooled", run.run_id).values())
    assert states == {"queued": 2, "scheduled": 3}  # waiting for the pool, not a window
    assert stack.store.used(pool_key("narrow_pool")) == 2
    spec = stack.scheduler.specs.get("pooled", run.version)
    view = stack.store.run_view("pooled", run.run_id, spec)
    assert view.summaries(["work"])["work"].window is None
    stack.settle()
    assert stack.store.get_run("pooled", run.run_id).state is DagRunState.SUCCESS
    assert stack.store.used(pool_key("narrow_pool")) == 0


@pytest.fixture
def dynamo_stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack(
            store=make_dynamo_store(store_settings()),
            clock=FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        )


def test_a_settle_whose_answer_was_lost_still_starts_the_right_next_index(
    dynamo_stack: Stack,
) -> None:
    """The settle of one windowed try lands and its answer is lost: the worker
    reads its landed move back (store.settles) and starts the index its place
    in the tally names, so every index starts once and the limit holds."""
    stack = dynamo_stack
    stack.deploy(mapped_dag("lost_answer", 6, max_active_tasks=2))
    settles: list[bytes] = []

    def fourth_settle(request: Any) -> bool:
        body = getattr(request, "body", None) or b""
        if b"dag-runs" in body and b'"sl"' in body:
            settles.append(body)
            return len(settles) == 4  # "items", then three of the map's tries
        return False

    with AwsFaults() as faults:
        faults.ambiguous("dynamodb", "UpdateItem", times=1, when=fourth_settle)
        run_id, seen = run_step_by_step(stack, "lost_answer")
        assert faults.rules[0].hits == 1
    assert stack.store.get_run("lost_answer", run_id).state is DagRunState.SUCCESS
    assert max(seen) == 2
    starts = [m.map_index for m in stack.executor.all if m.task_id == "work"]
    assert sorted(starts) == list(range(6))
