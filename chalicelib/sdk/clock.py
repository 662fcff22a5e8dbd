"""The clock a running task reads: the runtime's, so waits can be skipped in tests.

A sensor decides whether it timed out and when to poke again from "now". In the
worker that is wall time; under ``dags test`` it is the run's virtual clock,
which jumps over a reschedule's wait as it does over a retry delay, so a
sensor waiting an hour tests in milliseconds with coherent timestamps.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import time
from collections.abc import Callable, Iterator

Clock = Callable[[], dt.datetime]


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_CLOCK: contextvars.ContextVar[Clock] = contextvars.ContextVar(
    "slipstream_task_clock", default=_wall_clock
)


def now() -> dt.datetime:
    """The current time in UTC as the running try's clock tells it."""
    return _CLOCK.get()()


def sleep(seconds: float) -> None:
    """Wait in short steps, so an execution timeout or a cancel (delivered as an
    exception between bytecodes) stops a poke-mode sensor promptly."""
    deadline = time.monotonic() + max(0.0, seconds)
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.2))


@contextlib.contextmanager
def task_clock(clock: Clock) -> Iterator[None]:
    """Set by the runtime around one try."""
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)
