"""SqsPublishOperator on moto: standard and FIFO queues, templated fields."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.dag import DAG
from operators.sqs import SqsPublishOperator
from tests.operators.support import returned, run_operator

pytestmark = pytest.mark.usefixtures("aws")


def receive(url: str) -> list[dict[str, Any]]:
    response = boto3.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )
    return list(response.get("Messages", []))


def test_publish_renders_and_returns_the_send_response() -> None:
    url = boto3.client("sqs").create_queue(QueueName="events")["QueueUrl"]
    result, store = run_operator(
        lambda: SqsPublishOperator(
            task_id="pub",
            sqs_queue=url,
            message_content="ready {{ ds }}",
            message_attributes={"run": {"DataType": "String", "StringValue": "{{ run_id }}"}},
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    sent = returned(store, "pub")
    (message,) = receive(url)
    assert sent["MessageId"] == message["MessageId"]
    assert message["Body"] == "ready 2024-01-01"
    run_attribute = message["MessageAttributes"]["run"]["StringValue"]
    assert run_attribute.startswith("scheduled__2024-01-01")


def test_fifo_queue_takes_the_group_id_and_needs_one() -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(
        QueueName="jobs.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    result, _ = run_operator(
        lambda: SqsPublishOperator(
            task_id="pub", sqs_queue=url, message_content="m", message_group_id="{{ ds }}"
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    (message,) = receive(url)
    assert message["Attributes"]["MessageGroupId"] == "2024-01-01"
    missing, _ = run_operator(
        lambda: SqsPublishOperator(task_id="pub", sqs_queue=url, message_content="m")
    )
    assert missing.state is TaskState.FAILED
    assert missing.error == f"TaskFailed: pub: queue {url} is a FIFO queue; give message_group_id"


def test_delay_seconds_is_passed_on() -> None:
    url = boto3.client("sqs").create_queue(QueueName="later")["QueueUrl"]
    result, _ = run_operator(
        lambda: SqsPublishOperator(
            task_id="pub", sqs_queue=url, message_content="m", delay_seconds=900
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert receive(url) == []  # not visible for 15 minutes


def test_a_dag_publishing_through_dags_test() -> None:
    url = boto3.client("sqs").create_queue(QueueName="done")["QueueUrl"]
    with DAG("notify", schedule=None) as dag:
        SqsPublishOperator(task_id="pub", sqs_queue=url, message_content="{{ dag.dag_id }} done")
    assert run_dag_test(dag, show=False).succeeded
    assert [m["Body"] for m in receive(url)] == ["notify done"]
