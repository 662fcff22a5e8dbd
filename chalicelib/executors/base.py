"""The executor port: hand one try to the compute that will run it.

An executor only starts work; the worker it starts claims the try with a
conditional write, so a duplicate dispatch runs nothing twice.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec


@dataclass(frozen=True)
class DispatchHandle:
    """Where the try went: the executor kind and its own id (request id, task ARN, pid)."""

    kind: str
    ref: str


class Executor(abc.ABC):
    kind: str

    @abc.abstractmethod
    def dispatch(self, message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        """Start the try described by ``message``; raise ``DispatchError`` if it cannot."""


class DispatchError(Exception):
    """The executor refused or failed to start a try (throttled, bad config)."""
