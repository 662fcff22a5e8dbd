"""The event-driven scheduler: turns ticks, queue messages and finished tries
into engine decisions, and applies them.

Every entry point is safe to run twice on the same input and to be killed
between any two calls: runs have deterministic ids and are created once,
every state change is a conditional write in the store, and a try is handed
to an executor only by the writer that won its SCHEDULED -> QUEUED change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from chalicelib.core.engine import QUEUED_TIMEOUT
from chalicelib.executors.base import Executor
from chalicelib.scheduler.scheduler_state import SchedulerQueue
from chalicelib.scheduler.specs import SpecCache
from chalicelib.scheduler.tick import Ticking
from chalicelib.store.base import StateStore

HEARTBEAT_TIMEOUT = dt.timedelta(minutes=5)
"""A running try whose worker has not beaten for this long is presumed dead."""


STALL_TIMEOUT = dt.timedelta(minutes=5)
"""A running run whose finished count has not moved for this long is re-evaluated
whole (``Reconcile``): the safety net for a hand-off lost between a worker
recording its outcome and starting the next tasks."""


class Scheduler(Ticking):
    """One instance per Lambda container (or per local stack); holds no run state."""

    def __init__(
        self,
        store: StateStore,
        queue: SchedulerQueue,
        executors: Mapping[str, Executor],
        *,
        clock: Callable[[], dt.datetime],
        specs: SpecCache | None = None,
        heartbeat_timeout: dt.timedelta = HEARTBEAT_TIMEOUT,
        stall_timeout: dt.timedelta = STALL_TIMEOUT,
        queued_timeout: dt.timedelta = QUEUED_TIMEOUT,
    ):
        self.store = store
        self.queue = queue
        self.executors = executors
        self.clock = clock
        self.specs = specs or SpecCache(store)
        self.heartbeat_timeout = heartbeat_timeout
        self.stall_timeout = stall_timeout
        self.queued_timeout = queued_timeout
        self._pools: dict[str, int] = {}
        self._pools_read_at: dt.datetime | None = None
        self._bounds: dict[str, int] = {}
        self._expansions: dict[tuple[str, str], dict[str, int]] = {}
        from chalicelib.scheduler.backfills import Backfills
        from chalicelib.scheduler.deadlines import Deadlines

        self.backfills = Backfills(self)
        self.deadlines = Deadlines(self)
