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

    transient = False
    """True when the same dispatch may work later (throttled, AWS unreachable or
    answering 5xx): the try never started, so it is dispatched again instead of
    failed (see Scheduler._dispatch)."""


class DispatchUnavailable(DispatchError):
    """The executor's service refused for now (throttling, 5xx) or could not be reached."""

    transient = True


THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "EC2ThrottledException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceException",
    }
)


def is_unavailable(status: int | None, code: str) -> bool:
    """Whether an AWS error answer means "not now" rather than "never"."""
    return (status is not None and status >= 500) or code in THROTTLING_CODES
