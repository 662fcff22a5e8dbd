"""An S3 upload wakes the rescheduled S3KeySensor waiting for it at once,
instead of at its next poke (DynamoDB and S3 on moto, an injected clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pendulum
import pytest
from moto import mock_aws

from chalicelib.core.states import DagRunState, TaskState
from chalicelib.scheduler.event_router import EventRouter
from chalicelib.scheduler.sensor_wakeups import SensorWakeups
from chalicelib.sdk import DAG
from chalicelib.store.s3_watches import S3WatchStore
from operators.empty import EmptyOperator
from operators.sensors.s3 import S3KeySensor
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

START = pendulum.datetime(2024, 1, 1, tz="UTC")
HOUR = 3600


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        store = make_dynamo_store(store_settings())
        s = Stack(store=store, clock=FakeClock(dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)))
        s.deps.s3_watches = S3WatchStore(store.models.asset)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lake")
        yield s


def _sensing(**sensor: Any) -> DAG:
    with DAG("sensing", schedule=None, start_date=START) as dag:
        wait = S3KeySensor(task_id="wait", poke_interval=HOUR, **sensor)
        wait >> EmptyOperator(task_id="load")
    return dag


def _run_until_waiting(stack: Stack) -> None:
    """Run what is due now; leave delayed messages (the sensor's timer) queued."""
    while stack.executor.invocations or any(d == 0 for _, d in stack.queue.pending):
        if stack.executor.invocations:
            stack.run_worker(stack.executor.invocations.pop(0))
            continue
        index = next(i for i, (_, d) in enumerate(stack.queue.pending) if d == 0)
        message, _ = stack.queue.pending.pop(index)
        stack.scheduler.handle(message)


def _upload(key: str, event_id: str, bucket: str = "lake") -> dict[str, Any]:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=b"x")
    return {
        "id": event_id,
        "source": "aws.s3",
        "detail-type": "Object Created",
        "time": "2024-05-01T12:00:05Z",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def _router(stack: Stack, watches: S3WatchStore) -> EventRouter:
    class NoRoutes:
        def get_json(self, key: str) -> Any:
            return {}

    wakeups = SensorWakeups(stack.scheduler, watches)
    return EventRouter(
        stack.scheduler, NoRoutes(), "routes", clock=stack.clock, sensor_wakeups=wakeups
    )


def test_an_upload_wakes_the_waiting_sensor_without_waiting_for_its_interval(stack: Stack) -> None:
    stack.deploy(_sensing(bucket_key="s3://lake/in/*.csv", wildcard_match=True))
    watches = stack.deps.s3_watches
    run, _ = stack.scheduler.trigger("sensing")
    _run_until_waiting(stack)
    ti = stack.store.get_instance("sensing", run.run_id, "wait", -1)
    assert ti is not None and ti.state is TaskState.UP_FOR_RESCHEDULE
    assert watches.buckets() == ["lake"]
    [waiter] = watches.waiters("lake")
    assert (waiter.dag_id, waiter.run_id, waiter.task_id) == ("sensing", run.run_id, "wait")

    router = _router(stack, watches)
    # an upload the sensor does not wait for wakes nothing
    assert router.route(_upload("other/a.csv", "e-1")) == []
    assert stack.executor.invocations == [] and len(watches.waiters("lake")) == 1

    stack.clock.advance(5)
    router.route(_upload("in/2024-05-01.csv", "e-2"))
    _run_until_waiting(stack)
    assert stack.store.get_run("sensing", run.run_id).state is DagRunState.SUCCESS
    ti = stack.store.get_instance("sensing", run.run_id, "wait", -1)
    assert ti is not None and ti.try_number == 1
    assert ti.end_date is not None and ti.end_date < ti.first_poke_at + dt.timedelta(minutes=1)
    assert watches.waiters("lake") == []  # the wake-up took its row
    # the same event delivered again, and the sensor's original timer: nothing more runs
    router.route({**_upload("in/2024-05-01.csv", "e-2")})
    stack.settle()
    assert [o for o in stack.outcomes if not o.claimed] == []
    assert stack.states("sensing", run.run_id) == {"wait": "success", "load": "success"}


def test_an_unsatisfied_wake_up_reschedules_and_waits_again(stack: Stack) -> None:
    # two keys: the upload of one wakes the sensor, which still misses the other
    stack.deploy(_sensing(bucket_key=["s3://lake/a.csv", "s3://lake/b.csv"]))
    watches = stack.deps.s3_watches
    run, _ = stack.scheduler.trigger("sensing")
    _run_until_waiting(stack)
    router = _router(stack, watches)
    router.route(_upload("a.csv", "e-a"))
    _run_until_waiting(stack)
    ti = stack.store.get_instance("sensing", run.run_id, "wait", -1)
    assert ti is not None and ti.state is TaskState.UP_FOR_RESCHEDULE
    assert len(watches.waiters("lake")) == 1  # registered again by the second poke
    router.route(_upload("b.csv", "e-b"))
    _run_until_waiting(stack)
    assert stack.store.get_run("sensing", run.run_id).state is DagRunState.SUCCESS


def test_only_a_rescheduling_sensor_registers_its_keys(stack: Stack) -> None:
    from chalicelib.core.s3_keys import KeyPattern
    from chalicelib.runtime.sensor_wakeups import waking_sensors

    class Recording:
        def __init__(self) -> None:
            self.asked: list[list[KeyPattern]] = []

        def wake_on_s3(self, patterns: Any) -> None:
            self.asked.append(list(patterns))

    registry = Recording()
    poking = S3KeySensor(task_id="p", bucket_key="s3://lake/x.csv", mode="poke")
    regex = S3KeySensor(task_id="r", bucket_name="lake", bucket_key=r"in/\d+", use_regex=True)
    with waking_sensors(registry):
        assert poking.poke({}) is False
        assert regex.poke({}) is False
    assert registry.asked == [[KeyPattern("lake", r"in/\d+", "regex")]]
    assert regex.poke({}) is False  # no registry (dags test): it only polls


def test_a_waiter_whose_run_is_gone_is_dropped(stack: Stack) -> None:
    watches = stack.deps.s3_watches
    from chalicelib.core.s3_keys import KeyPattern

    watches.watch("gone", "manual__x", "wait", -1, [KeyPattern("lake", "k")])
    router = _router(stack, watches)
    assert router.route(_upload("k", "e-k")) == []
    assert watches.waiters("lake") == []
