"""The scheduler queue: SQS in AWS and on moto, a list in unit tests; what a
message on it may be, and where one that can never be handled goes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.messages import SCHEDULER_MESSAGE, SchedulerMessage

MAX_DELAY_SECONDS = 900

MAX_RECEIVE_COUNT = 5
"""Deliveries of one message before SQS moves it to the dead-letter queue: the
redrive policy's maxReceiveCount. infra/stack.yaml declares the same default
(``MaxReceiveCount``; tests/infra checks they agree) and the local stack
creates its queue with it."""

_ID_FIELDS = ("dag_id", "run_id", "task_id", "map_index", "try_number")


class PoisonMessage(SlipstreamError):
    """A queue message no retry can make sense of: not JSON, not the shape of any
    scheduler message, or an event that cannot start a run."""

    def __init__(self, reason: str, ids: Mapping[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.ids = dict(ids or {})


def is_event_envelope(document: Any) -> bool:
    """An EventBridge event (S3 upload, custom event) rather than a scheduler message."""
    return isinstance(document, Mapping) and "detail-type" in document and "source" in document


def encode(message: SchedulerMessage) -> str:
    return message.model_dump_json()


def decode(body: str) -> SchedulerMessage:
    return SCHEDULER_MESSAGE.validate_json(body)


def parse_body(body: str) -> SchedulerMessage | dict[str, Any]:
    """A scheduler message or an EventBridge envelope; PoisonMessage for anything else.

    Poison is told apart here, before any work, so that it is rejected once
    instead of failing (and coming back) on every delivery; the ids it carries,
    if any, name it in the log line that rejects it.
    """
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise PoisonMessage(f"not JSON ({exc})") from None
    from chalicelib.scheduler.invoke_failures import is_invoke_failure

    if is_invoke_failure(document):
        return dict(document)  # a crashed worker invoke (Lambda's on-failure destination)
    if is_event_envelope(document):
        if not document.get("id"):
            raise PoisonMessage("an EventBridge event without an id cannot start a run")
        return dict(document)
    if not isinstance(document, dict):
        raise PoisonMessage(f"not a scheduler message: a JSON {type(document).__name__}")
    ids = {k: document[k] for k in _ID_FIELDS if isinstance(document.get(k), (str, int))}
    try:
        return SCHEDULER_MESSAGE.validate_python(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'message'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise PoisonMessage(f"not a scheduler message ({problems})", ids) from None


def message_ids(message: SchedulerMessage) -> dict[str, Any]:
    """The ids a message's log lines carry (its own, never another message's)."""
    return {k: getattr(message, k) for k in _ID_FIELDS if getattr(message, k, None) is not None}


class SqsSchedulerQueue:
    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self.queue_url = queue_url

    def send(self, message: SchedulerMessage, delay_seconds: int = 0) -> None:
        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        self._sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=encode(message), DelaySeconds=delay
        )


class InMemorySchedulerQueue:
    """Messages in order with their delays; tests drain it explicitly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: list[tuple[SchedulerMessage, int]] = []
        self.sent: list[tuple[SchedulerMessage, int]] = []

    def send(self, message: SchedulerMessage, delay_seconds: int = 0) -> None:
        with self._lock:
            self.pending.append((message, delay_seconds))
            self.sent.append((message, delay_seconds))

    def drain(self) -> Iterable[tuple[SchedulerMessage, int]]:
        while True:
            with self._lock:
                if not self.pending:
                    return
                item = self.pending.pop(0)
            yield item


class SqsDeadLetters:
    """Sends a poison message straight to the queue's dead-letter queue, so it is
    rejected once instead of being received ``MAX_RECEIVE_COUNT`` times first.

    The target is the one the queue's redrive policy names (read once per
    container), so there is one place that says where dead letters go.
    """

    def __init__(self, sqs_client: Any, source_url: str):
        self._sqs = sqs_client
        self.source_url = source_url
        self._target: str | None = None
        self._resolved = False

    def target_url(self) -> str | None:
        if not self._resolved:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.source_url, AttributeNames=["RedrivePolicy"]
            ).get("Attributes", {})
            policy = json.loads(attributes.get("RedrivePolicy") or "{}")
            arn = policy.get("deadLetterTargetArn")
            if arn:
                _, _, _, _, account, name = arn.split(":", 5)
                self._target = self._sqs.get_queue_url(
                    QueueName=name, QueueOwnerAWSAccountId=account
                )["QueueUrl"]
            self._resolved = True
        return self._target

    def send(self, body: str, reason: str, message_id: str) -> bool:
        """False when the queue has no dead-letter queue (the message then stays
        on the queue, failing, rather than being dropped)."""
        target = self.target_url()
        if target is None:
            return False
        self._sqs.send_message(
            QueueUrl=target,
            MessageBody=body,
            MessageAttributes={
                "RejectedReason": {"DataType": "String", "StringValue": reason[:1000]},
                "SourceMessageId": {"DataType": "String", "StringValue": message_id},
            },
        )
        return True
