"""Counting a try's AWS calls: per thread, into the meter active there, and
reported as the last line of the try's log."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.pricing import DYNAMODB_READ, DYNAMODB_WRITE, call_price, estimate
from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG, task
from chalicelib.store.task_logs import TaskLogStore
from chalicelib.store.usage import USAGE_EVENT, CallMeter
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

GROUP = "/slipstream/test/tasks"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_a_meter_counts_only_the_threads_it_is_active_on(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="metered")
    meter = CallMeter()
    with meter.active():
        s3.list_objects_v2(Bucket="metered")
        s3.put_object(Bucket="metered", Key="k", Body=b"x")
        other = threading.Thread(target=lambda: s3.list_objects_v2(Bucket="metered"))
        other.start()
        other.join()
    s3.list_objects_v2(Bucket="metered")  # after the block: not counted
    assert meter.snapshot() == {"s3": {"ListObjectsV2": 1, "PutObject": 1}}


def test_prices_follow_the_request_class() -> None:
    assert call_price("dynamodb", "GetItem") == DYNAMODB_READ
    assert call_price("dynamodb", "UpdateItem") == DYNAMODB_WRITE
    assert call_price("dynamodb", "TransactWriteItems") == 2 * DYNAMODB_WRITE
    assert call_price("logs", "PutLogEvents") == 0.0
    cost = estimate({"dynamodb": {"GetItem": 4}}, worker_seconds=2.0, worker_memory_mb=512)
    assert cost["dynamodb"] == pytest.approx(4 * DYNAMODB_READ)
    assert cost["lambda_compute"] == pytest.approx(2.0 * 0.5 * 0.0000166667)


def test_each_try_reports_its_calls_as_its_last_log_line(aws: None) -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    task_logs = TaskLogStore(logs, GROUP)
    task_logs.create_group()
    stack = Stack(
        store=make_dynamo_store(store_settings()),
        clock=FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    )
    stack.deps.task_logs = task_logs
    stack.deps.meter = CallMeter

    with DAG("metered") as dag:

        @task
        def one() -> int:
            return 1

        @task
        def two(value: int) -> int:
            return value + 1

        two(one())

    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("metered")
    stack.settle()
    assert stack.store.get_run("metered", run.run_id).state is DagRunState.SUCCESS

    records: list[dict[str, Any]] = task_logs.usage_records("metered", run.run_id, USAGE_EVENT)
    assert sorted(r["task_id"] for r in records) == ["one", "two"]
    for record in records:
        dynamodb = record["calls"]["dynamodb"]
        assert sum(dynamodb.values()) >= 2  # at least the claim and the recorded outcome
        assert record["calls"]["logs"]["PutLogEvents"] >= 1
        assert record["seconds"] >= 0
