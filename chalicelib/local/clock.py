"""The clock of a local test run: real time plus the delays it chose to skip.

Apart from the runner so that the runner stays about driving the run; the
clock is what lets a five-minute retry delay cost nothing while every
timestamp a task sees stays coherent.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class VirtualClock:
    """Real time plus the retry delays skipped so far."""

    def __init__(self, base: Clock, real_time: bool):
        self._base = base
        self._skipped = dt.timedelta(0)
        self.real_time = real_time
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._base() + self._skipped

    def advance_to(self, when: dt.datetime) -> None:
        """Jump forward so that ``when`` is now (never backwards)."""
        with self._lock:
            now = self._base() + self._skipped
            if when > now:
                self._skipped += when - now
