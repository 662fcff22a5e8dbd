"""The executor a local worker process uses for its own hand-off.

A warm local worker cannot reach the stack's process pool directly, so the
tries its mini-scheduler starts are collected here and returned on the
worker's status line; the stack's LocalExecutor dispatches them at once. This
keeps the local hand-off a pipe round trip, as a Lambda async invoke is a
single API call.
"""

from __future__ import annotations

import threading

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import DispatchHandle, Executor


class RelayExecutor(Executor):
    kind = "relay"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[WorkerMessage] = []

    def dispatch(self, message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        with self._lock:
            self._messages.append(message)
        return DispatchHandle("relay", message.label)

    def drain(self) -> list[WorkerMessage]:
        with self._lock:
            drained, self._messages = self._messages, []
        return drained


RELAY = RelayExecutor()
