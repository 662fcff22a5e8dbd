"""The AWS resources the local stack (and tests) create in moto, and the record
shape Lambda hands an SQS-triggered function."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any


def create_resources() -> str:
    """Tables, bucket, task log group, scheduler queue, and the Slipstream bus
    and rules that feed the queue, named by the environment; returns the queue URL.

    What infra/stack.yaml creates in AWS, for moto (the local stack and tests).
    """
    from chalicelib import wiring
    from chalicelib.local.event_sources import event_bus_name, wire_rules
    from chalicelib.store.models import build_models, create_tables

    settings = wiring.store_settings()
    create_tables(build_models(settings))
    result_model = wiring.result_model()
    if not result_model.exists():
        result_model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    wiring.client("s3").create_bucket(Bucket=settings.bucket)
    wiring.task_log_store().create_group()
    sqs = wiring.client("sqs")
    url = create_scheduler_queue(sqs, os.environ["SLIPSTREAM_QUEUE_NAME"])
    wire_rules(wiring.client("events"), sqs, url, event_bus_name())
    return url


def create_scheduler_queue(sqs: Any, name: str, *, visibility_timeout: int = 30) -> str:
    """The scheduler queue and its dead-letter queue, with the redrive policy
    infra/stack.yaml declares (after MAX_RECEIVE_COUNT deliveries a message that
    keeps failing moves to ``<name>-dlq``); returns the queue's URL.

    The visibility timeout is shorter than the stack's 360 s: a message a
    local handler failed comes back within half a minute.
    """
    from chalicelib.scheduler.queue import MAX_RECEIVE_COUNT

    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    url: str = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return url


def sqs_record(message: Mapping[str, Any], queue_url: str) -> dict[str, Any]:
    """The record shape Lambda hands an SQS-triggered function."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get(
                "SentTimestamp", str(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
            ),
            "SenderId": attributes.get("SenderId", "local"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", "0"
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[-1]}",
        "awsRegion": "us-east-1",
        "messageIdHint": str(uuid.uuid4()),
    }
