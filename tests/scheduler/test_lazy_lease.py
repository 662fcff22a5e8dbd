"""The heartbeat lease is taken at a try's first heartbeat, not at its claim.

A try that ends before its worker first beats (most of them: no-op and short
tasks, sensor pokes) never writes the sparse ``running`` index; a try whose
worker died between claim and first beat is found by the tick's stall net
(reconciliation) and handled exactly as a stale heartbeat is.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.client import BaseClient
from moto import mock_aws

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.scheduler.tick import TickReport
from chalicelib.sdk import DAG, task
from operators.empty import EmptyOperator
from operators.sensors.python import PythonSensor
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

NOW = dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)
_WRITES = {"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def _running_index(table: str) -> list[str]:
    """The items the ``running`` GSI holds now ("pk|sk")."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = client.scan(TableName=table, IndexName="running")["Items"]
    return [f"{i['pk']['S']}|{i['sk']['S']}" for i in items]


class IndexWatch:
    """Looks at the ``running`` index after every DynamoDB write, so an entry that
    comes and goes between two steps of a test is seen too."""

    def __init__(self, table: str):
        self.table = table
        self.writes = 0
        self.seen: set[str] = set()
        original = BaseClient._make_api_call

        def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            answer = original(client, operation, params)
            if client.meta.service_model.service_name == "dynamodb" and operation in _WRITES:
                self.writes += 1
                self.seen.update(_running_index(self.table))
            return answer

        self._patch = mock.patch.object(BaseClient, "_make_api_call", call)

    def __enter__(self) -> IndexWatch:
        self._patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.stop()


@pytest.fixture
def dynamo() -> Iterator[Stack]:
    with mock_aws():
        yield Stack(store=make_dynamo_store(store_settings()), clock=FakeClock(NOW))


@pytest.fixture
def stack(store: Any) -> Stack:
    return Stack(store=store, clock=FakeClock(NOW))


def _table() -> str:
    return store_settings().task_instances_table


def test_short_tries_never_enter_the_running_index(dynamo: Stack) -> None:
    """A chain, a try that fails and is retried, and a rescheduled sensor's pokes
    all end before a first heartbeat: not one index write (the GSI stays empty)."""
    failed_once: list[int] = []
    pokes: list[int] = []

    def ready() -> bool:
        pokes.append(1)
        return len(pokes) > 1

    with DAG("short") as dag:

        @task(retries=1, retry_delay=timedelta(seconds=10))
        def flaky() -> None:
            if not failed_once:
                failed_once.append(1)
                raise RuntimeError("first try fails")

        wait = PythonSensor(
            task_id="wait", python_callable=ready, mode="reschedule", poke_interval=30
        )
        EmptyOperator(task_id="a") >> flaky() >> wait >> EmptyOperator(task_id="b")
    dynamo.deploy(dag)
    with IndexWatch(_table()) as watch:
        run, _ = dynamo.scheduler.trigger("short")
        dynamo.settle()
    assert dynamo.store.get_run("short", run.run_id).state is DagRunState.SUCCESS
    assert len(pokes) == 2 and failed_once == [1]
    assert watch.writes > 10 and watch.seen == set()


def test_the_first_heartbeat_enters_the_index_and_the_record_leaves_it(dynamo: Stack) -> None:
    beaten = threading.Event()
    inside: list[list[str]] = []
    with DAG("slow") as dag:

        @task
        def long_enough_to_beat() -> None:
            assert beaten.wait(30)
            inside.append(_running_index(_table()))

        long_enough_to_beat()

    dynamo.deploy(dag)
    dynamo.deps.heartbeat_seconds = 0.01
    real_heartbeat = dynamo.store.heartbeat

    def heartbeat(*args: Any) -> bool:
        alive = real_heartbeat(*args)
        if alive:
            beaten.set()
        return alive

    dynamo.store.heartbeat = heartbeat  # type: ignore[method-assign]
    run, _ = dynamo.scheduler.trigger("slow")
    dynamo.settle()
    assert dynamo.store.get_run("slow", run.run_id).state is DagRunState.SUCCESS
    assert inside == [[f"slow#{run.run_id}|long_enough_to_beat#-1"]]
    assert _running_index(_table()) == []  # the outcome record took it out
    ti = dynamo.store.get_instance("slow", run.run_id, "long_enough_to_beat", -1)
    assert ti is not None and ti.last_heartbeat_at is None


def _claimed_then_killed(stack: Stack, dag: DAG) -> tuple[str, WorkerMessage]:
    """Start a run of ``dag`` and claim its first try as its worker would, then
    let that worker die before its first heartbeat."""
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger(dag.dag_id)
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    message = stack.executor.invocations.pop(0)
    assert stack.claim(message)
    return run.run_id, message


def _tick_each_minute_until_reaped(stack: Stack, minutes: int = 15) -> tuple[int, TickReport]:
    """Tick as EventBridge does, once a minute; the minute the try was reaped."""
    for minute in range(minutes + 1):
        report = stack.scheduler.tick()
        if report.tries_reaped:
            return minute, report
        stack.clock.advance(60)
    raise AssertionError(f"not reaped within {minutes} minutes")


@pytest.mark.parametrize(("retries", "final"), [(1, "success"), (0, "upstream_failed")])
def test_a_worker_killed_before_its_first_heartbeat_is_reaped_by_the_tick(
    stack: Stack, retries: int, final: str
) -> None:
    with DAG("fragile") as dag:
        EmptyOperator(
            task_id="a", retries=retries, retry_delay=timedelta(seconds=10)
        ) >> EmptyOperator(task_id="b")
    run_id, _ = _claimed_then_killed(stack, dag)
    assert stack.store.stale_running(NOW + dt.timedelta(days=1)) == []  # never in the index

    minute, report = _tick_each_minute_until_reaped(stack)

    # the heartbeat timeout (5 minutes) after its claim, at the run's first stalled tick
    assert minute == 5 and report.tries_reaped == [f"{run_id}/a"]
    assert report.runs_reconciled == [f"fragile/{run_id}"]
    ti = stack.store.get_instance("fragile", run_id, "a", -1)
    assert ti is not None and ti.error == "worker heartbeat lost"
    assert ti.state is (TaskState.UP_FOR_RETRY if retries else TaskState.FAILED)
    stack.settle()
    a_state = "success" if retries else "failed"
    assert stack.states("fragile", run_id) == {"a": a_state, "b": final}
    expected = DagRunState.SUCCESS if retries else DagRunState.FAILED
    assert stack.store.get_run("fragile", run_id).state is expected
    after = stack.store.get_instance("fragile", run_id, "a", -1)
    assert after is not None and after.try_number == 1 + retries


def test_a_claim_after_the_runs_last_check_is_reaped_at_the_next_stall(stack: Stack) -> None:
    """A try claimed a while after the tick noted the run is still too young at the
    first stalled tick; the next stall period reaps it: within the heartbeat
    timeout plus the stall timeout of its claim."""
    with DAG("late") as dag:
        EmptyOperator(task_id="a", retries=0)
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("late")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    assert [m.task_id for m in stack.executor.invocations] == ["a"]  # its worker dies
    stack.scheduler.tick()  # notes the run's progress
    stack.clock.advance(2 * 60)  # a slow start (a container pulling its image)
    spec = stack.scheduler.specs.get("late", run.version)
    assert stack.store.claim("late", run.run_id, spec, "a", -1, 1, stack.clock()).won
    stack.clock.advance(60)

    minute, report = _tick_each_minute_until_reaped(stack)

    assert minute + 1 <= 10  # minutes after the claim
    assert report.tries_reaped == [f"{run.run_id}/a"]
    assert stack.store.get_run("late", run.run_id).state is DagRunState.FAILED


def test_a_worker_killed_after_a_heartbeat_is_reaped_by_the_lease(stack: Stack) -> None:
    """Once it beat, the try is in the index: the first tick past the heartbeat
    timeout reaps it, with no stall check needed."""
    with DAG("beaten") as dag:
        EmptyOperator(task_id="a", retries=0)
    run_id, message = _claimed_then_killed(stack, dag)
    stack.clock.advance(30)
    beat = ("beaten", run_id, "a", -1, message.try_number)
    assert stack.store.heartbeat(*beat, stack.clock())
    assert [ti.label for _, ti in stack.store.stale_running(NOW + dt.timedelta(days=1))] == ["a"]
    stack.clock.advance(5 * 60 + 1)

    report = stack.scheduler.tick()  # the run's first check only notes its progress

    assert report.tries_reaped == [f"{run_id}/a"] and report.runs_reconciled == []
    ti = stack.store.get_instance("beaten", run_id, "a", -1)
    assert ti is not None and (ti.state, ti.error) == (TaskState.FAILED, "worker heartbeat lost")
    assert stack.store.stale_running(NOW + dt.timedelta(days=1)) == []
