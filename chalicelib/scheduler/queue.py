"""The scheduler queue: SQS in AWS and on moto, a list in unit tests."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from chalicelib.core.messages import SCHEDULER_MESSAGE, SchedulerMessage

MAX_DELAY_SECONDS = 900


def encode(message: SchedulerMessage) -> str:
    return message.model_dump_json()


def decode(body: str) -> SchedulerMessage:
    return SCHEDULER_MESSAGE.validate_json(body)


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
