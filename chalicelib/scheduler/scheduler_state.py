"""What every part of the Scheduler shares: its store, queue, executors and
clock, and the small caches a warm container keeps (pools, bounds, map counts).

The Scheduler (scheduler.service) is assembled from parts, each one idea,
stacked so each sees the ones below it: applying decisions and dispatching
tries (scheduler.applying), a run's lifecycle and its events
(scheduler.run_lifecycle), reaping lost tries (scheduler.reaping) and the
periodic tick (scheduler.tick).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, cast

from chalicelib.core.messages import SchedulerMessage
from chalicelib.executors.base import Executor
from chalicelib.scheduler.specs import SpecCache
from chalicelib.store.base import StateStore

if TYPE_CHECKING:
    from chalicelib.scheduler.backfills import Backfills
    from chalicelib.scheduler.deadlines import Deadlines
    from chalicelib.scheduler.service import Scheduler


class SchedulerQueue(Protocol):
    def send(self, message: SchedulerMessage, delay_seconds: int = 0) -> None: ...


class SchedulerState:
    """The attributes Scheduler.__init__ sets, declared for every part."""

    store: StateStore
    queue: SchedulerQueue
    executors: Mapping[str, Executor]
    clock: Callable[[], dt.datetime]
    specs: SpecCache
    heartbeat_timeout: dt.timedelta
    stall_timeout: dt.timedelta
    queued_timeout: dt.timedelta
    _pools: dict[str, int]
    _pools_read_at: dt.datetime | None
    _bounds: dict[str, int]
    _expansions: dict[tuple[str, str], dict[str, int]]
    backfills: Backfills
    deadlines: Deadlines

    @property
    def _scheduler(self) -> Scheduler:
        """This part as the assembled Scheduler, for the helpers that take one."""
        return cast("Scheduler", self)
