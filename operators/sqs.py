"""``SqsPublishOperator``: send one message to an SQS queue; the send response is the result.

As Airflow's amazon provider: ``sqs_queue`` is the queue URL; ``message_content``,
``message_attributes``, ``delay_seconds``, ``message_group_id`` and
``message_deduplication_id`` are templated. A FIFO queue (URL ending ``.fifo``)
needs ``message_group_id``; without it the try fails before sending, saying so,
where Airflow lets SQS refuse the call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.sdk.exceptions import TaskFailed
from operators.aws_base import AWS_TEMPLATE_FIELDS, AwsBaseOperator
from operators.hooks.sqs import SqsHook

_task_log = logging.getLogger("slipstream.task")


class SqsPublishOperator(AwsBaseOperator):
    template_fields = (
        "sqs_queue",
        "message_content",
        "delay_seconds",
        "message_attributes",
        "message_group_id",
        "message_deduplication_id",
        *AWS_TEMPLATE_FIELDS,
    )
    template_fields_renderers = {"message_attributes": "json"}
    aws_hook_class = SqsHook

    def __init__(
        self,
        *,
        sqs_queue: str,
        message_content: str,
        message_attributes: Mapping[str, Any] | None = None,
        delay_seconds: int = 0,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.sqs_queue = sqs_queue
        self.message_content = message_content
        self.message_attributes = dict(message_attributes or {})
        self.delay_seconds = delay_seconds
        self.message_group_id = message_group_id
        self.message_deduplication_id = message_deduplication_id

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        if str(self.sqs_queue).endswith(".fifo") and not self.message_group_id:
            raise TaskFailed(
                f"{self.task_id}: queue {self.sqs_queue} is a FIFO queue; give message_group_id"
            )
        hook: Any = self.hook
        result: dict[str, Any] = hook.send_message(
            queue_url=self.sqs_queue,
            message_body=self.message_content,
            delay_seconds=self.delay_seconds,
            message_attributes=self.message_attributes,
            message_group_id=self.message_group_id,
            message_deduplication_id=self.message_deduplication_id,
        )
        _task_log.info("sent message %s to %s", result.get("MessageId"), self.sqs_queue)
        return result
