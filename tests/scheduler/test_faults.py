"""Scheduler and worker under AWS answers that are lost or refused.

Lost answers need DynamoDB on moto (tests/aws_faults.py sits where the
network would be); a refused dispatch runs on both stores.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.executors.base import DispatchHandle
from chalicelib.executors.lambda_executor import DispatchThrottled
from chalicelib.sdk import DAG, task
from operators.empty import EmptyOperator
from tests.aws_faults import AwsFaults, request_params
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

NOW = dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)


def dynamo_stack() -> Stack:
    return Stack(store=make_dynamo_store(store_settings()), clock=FakeClock(NOW))


@pytest.fixture
def stack(store: Any) -> Stack:
    return Stack(store=store, clock=FakeClock(NOW))


@pytest.fixture
def dynamo() -> Iterator[Stack]:
    with mock_aws():
        yield dynamo_stack()


def _sets_state(state: TaskState) -> Any:
    """A predicate: the update writes ``st = state`` on a task instance."""

    def check(request: Any) -> bool:
        params = request_params(request)
        values = params.get("ExpressionAttributeValues", {})
        table = str(params.get("TableName", ""))
        return table.endswith("task-instances") and {"S": state.value} in values.values()

    return check


def _start(stack: Stack, dag: DAG) -> str:
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger(dag.dag_id)
    return run.run_id


def test_a_claim_whose_answer_is_lost_still_runs_the_try(dynamo: Stack) -> None:
    ran: list[str] = []
    with DAG("claimed") as dag:

        @task
        def work() -> None:
            ran.append("work")

        work() >> EmptyOperator(task_id="after")
    run_id = _start(dynamo, dag)
    dynamo.scheduler.handle(dynamo.queue.pending.pop(0)[0])
    message = dynamo.executor.invocations.pop(0)
    with AwsFaults() as faults:
        faults.ambiguous("dynamodb", "UpdateItem", times=1, when=_sets_state(TaskState.RUNNING))
        outcome = dynamo.run_worker(message)
    assert faults.fired() == 1
    assert outcome.claimed and outcome.recorded
    dynamo.settle()
    assert ran == ["work"]
    assert dynamo.states("claimed", run_id) == {"work": "success", "after": "success"}
    dynamo.clock.advance(10 * 60)
    assert dynamo.scheduler.tick().tries_reaped == []


def test_a_queueing_write_whose_answer_is_lost_still_dispatches(dynamo: Stack) -> None:
    with DAG("queued") as dag:
        EmptyOperator(task_id="only")
    run_id = _start(dynamo, dag)
    with AwsFaults() as faults:
        faults.ambiguous("dynamodb", "UpdateItem", times=1, when=_sets_state(TaskState.QUEUED))
        dynamo.scheduler.handle(dynamo.queue.pending.pop(0)[0])
    assert faults.fired() == 1
    assert [m.task_id for m in dynamo.executor.invocations] == ["only"]
    dynamo.settle()
    assert dynamo.store.get_run("queued", run_id).state is DagRunState.SUCCESS


def test_a_refused_dispatch_is_sent_again_after_a_backoff_without_using_a_retry(
    stack: Stack,
) -> None:
    refused: list[str] = []
    original = stack.executor.dispatch

    def throttled_once(message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        if not refused:
            refused.append(message.label)
            raise DispatchThrottled("Rate exceeded")
        return original(message, spec)

    stack.executor.dispatch = throttled_once  # type: ignore[method-assign]
    with DAG("throttled") as dag:
        EmptyOperator(task_id="only", retries=0)
    run_id = _start(stack, dag)
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    assert refused and stack.states("throttled", run_id) == {"only": "queued"}
    # The backoff timer (scheduler.start_backoff) starts it again, not the tick:
    [(timer, delay)] = stack.queue.pending
    assert (timer.kind, timer.attempt, delay) == ("dispatch", 2, 40)
    report = stack.scheduler.tick()
    assert report.tries_reaped == [] and report.tries_redispatched == []
    stack.settle()
    ti = stack.store.get_instance("throttled", run_id, "only", -1)
    assert ti is not None and (ti.state, ti.try_number) == (TaskState.SUCCESS, 1)
    assert stack.store.get_run("throttled", run_id).state is DagRunState.SUCCESS
    assert stack.scheduler.tick().tries_redispatched == []  # it left the index


def test_a_worker_that_claimed_and_went_silent_is_still_reaped(dynamo: Stack) -> None:
    with DAG("silent") as dag:
        EmptyOperator(task_id="a", retries=0)
    run_id = _start(dynamo, dag)
    dynamo.scheduler.handle(dynamo.queue.pending.pop(0)[0])
    message = dynamo.executor.invocations.pop(0)
    spec = dynamo.scheduler.specs.get("silent", dynamo.store.get_run("silent", run_id).version)
    assert dynamo.store.claim("silent", run_id, spec, "a", -1, message.try_number, NOW).won
    dynamo.scheduler.tick()  # the minute tick notes the run's progress
    dynamo.clock.advance(6 * 60)
    report = dynamo.scheduler.tick()  # it died before its first heartbeat: the stall net
    assert report.tries_reaped == [f"{run_id}/a"] and report.tries_redispatched == []
    assert dynamo.states("silent", run_id) == {"a": "failed"}


def fan_dag(starts: Counter[str]) -> DAG:
    """start -> {left, right} -> items -> square (mapped, 6) -> total, with every start counted."""
    with DAG("faulted") as dag:

        @task
        def start() -> int:
            starts["start"] += 1
            return 1

        @task
        def left(x: int) -> int:
            starts["left"] += 1
            return x

        @task
        def right(x: int) -> int:
            starts["right"] += 1
            return x

        @task
        def items(a: int, b: int) -> list[int]:
            starts["items"] += 1
            return list(range(a + b + 4))

        @task
        def square(x: int) -> int:
            starts[f"square[{x}]"] += 1
            return x * x

        @task
        def total(values: list[int]) -> int:
            starts["total"] += 1
            return sum(values)

        first = start()
        total(square.expand(x=items(left(first), right(first))))
    return dag


def _run_to_end(stack: Stack, starts: Counter[str]) -> dict[str, Any]:
    run_id = _start(stack, fan_dag(starts))
    stack.settle()
    for _ in range(3):  # a lost hand-off is the tick's to find (it finds none here)
        stack.clock.advance(6 * 60)
        stack.scheduler.tick()
        stack.settle()
    run = stack.store.get_run("faulted", run_id)
    found, value = stack.xcoms[("faulted", run_id)].pull("total", -1, "return_value")
    return {
        "run": run.state,
        "states": stack.states("faulted", run_id),
        "progress": stack.store.run_progress("faulted", run_id),
        "total": value if found else None,
        "starts": dict(starts),
    }


def test_a_run_under_lost_and_refused_answers_ends_as_a_clean_one() -> None:
    with mock_aws():
        clean = _run_to_end(dynamo_stack(), Counter())
    with mock_aws():
        stack = dynamo_stack()
        with AwsFaults(seed=7) as injector:
            # claims, queueing and recording writes; counters, slots, run creation
            injector.ambiguous("dynamodb", "UpdateItem", rate=0.25, spare_retries=True)
            injector.ambiguous("dynamodb", "TransactWriteItems", rate=0.3, spare_retries=True)
            injector.refuse("dynamodb", "UpdateItem", rate=0.1, spare_retries=True)
            faulted = _run_to_end(stack, Counter())
    assert injector.fired("ambiguous", "UpdateItem") >= 3
    assert injector.fired("ambiguous", "TransactWriteItems") >= 1
    assert clean["run"] is DagRunState.SUCCESS and clean["total"] == sum(x * x for x in range(6))
    assert all(n == 1 for n in clean["starts"].values())
    assert faulted == clean
