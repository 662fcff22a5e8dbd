"""``SqsHook``: send messages to an SQS queue (Airflow's hooks.sqs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from operators.hooks.aws_base import AwsBaseHook


class SqsHook(AwsBaseHook):
    """The ``sqs`` client of an AWS connection."""

    def __init__(self, aws_conn_id: str | None = "aws_default", **kwargs: Any):
        kwargs["client_type"] = "sqs"
        super().__init__(aws_conn_id, **kwargs)

    def send_message(
        self,
        queue_url: str,
        message_body: str,
        delay_seconds: int = 0,
        message_attributes: Mapping[str, Any] | None = None,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
    ) -> dict[str, Any]:
        """Send one message; the group and deduplication ids only when given (FIFO queues)."""
        params: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MessageBody": message_body,
            "DelaySeconds": int(delay_seconds),
            "MessageAttributes": dict(message_attributes or {}),
        }
        if message_group_id:
            params["MessageGroupId"] = message_group_id
        if message_deduplication_id:
            params["MessageDeduplicationId"] = message_deduplication_id
        return dict(self.conn.send_message(**params))
