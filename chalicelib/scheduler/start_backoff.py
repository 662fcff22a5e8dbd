"""A start the executor refused for now (ECS RunTask ``failures`` such as
RESOURCE:MEMORY or no Fargate capacity, throttling, AWS unreachable) is tried
again with exponential backoff, a bounded number of times, and then fails the
try with the executor's reason.

Holding nothing: the try waits QUEUED (using none of its retries) and a
``TimerFired(kind="dispatch")`` delay message carries the attempt count. The
heartbeat reaper stays the fallback should that message be lost: the deferred
try enters its index due a heartbeat timeout after the backoff ends. The final
failure goes through the same ``fail_try`` path as any lost try, so the task's
own ``retries`` then apply.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from chalicelib.core.engine import RequeueTask, ScheduleTask
from chalicelib.core.messages import TimerFired
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.executors.base import DispatchError

if TYPE_CHECKING:
    from chalicelib.scheduler.service import Scheduler

log = logging.getLogger("slipstream.scheduler")

START_ATTEMPTS = 5
"""Starts tried before the try fails: the first and four backed-off ones."""

FIRST_DELAY_SECONDS = 40
"""Waits of 40, 80, 160 and 320 s: the last attempt comes 10 minutes after the first."""


def backoff_seconds(attempt: int) -> int:
    """The wait after failed start number ``attempt`` (1-based)."""
    return FIRST_DELAY_SECONDS * 2 ** max(0, attempt - 1)


def start_refused(
    scheduler: Scheduler,
    spec: DagSpec,
    run: DagRun,
    cmd: ScheduleTask | RequeueTask,
    now: dt.datetime,
    attempt: int,
    exc: DispatchError,
) -> None:
    """Start ``attempt`` of the try was refused: wait and try again, or fail it."""
    label = f"{run.dag_id}/{run.run_id}/{cmd.task_id}"
    if cmd.map_index >= 0:
        label += f"[{cmd.map_index}]"
    if attempt >= START_ATTEMPTS:
        reason = f"not started after {attempt} attempts: {exc}"
        log.error("%s#%d %s", label, cmd.try_number, reason)
        store = scheduler.store
        ti = store.get_instance(run.dag_id, run.run_id, cmd.task_id, cmd.map_index)
        if ti is not None and ti.state is TaskState.QUEUED and ti.try_number == cmd.try_number:
            scheduler.fail_lost_try(run.dag_id, run.run_id, ti, reason)
        return
    delay = backoff_seconds(attempt)
    due = now + dt.timedelta(seconds=delay)
    log.warning(
        "%s#%d not started (attempt %d of %d), again in %d s: %s",
        label,
        cmd.try_number,
        attempt,
        START_ATTEMPTS,
        delay,
        exc,
    )
    deferred = scheduler.store.defer_dispatch(
        run.dag_id, run.run_id, spec, cmd.task_id, cmd.map_index, cmd.try_number, now, until=due
    )
    if not deferred:
        return  # no longer queued: someone else dispatched, marked or failed it
    timer = TimerFired(
        dag_id=run.dag_id,
        run_id=run.run_id,
        kind="dispatch",
        task_id=cmd.task_id,
        map_index=cmd.map_index,
        try_number=cmd.try_number,
        attempt=attempt + 1,
    )
    scheduler.timer(timer, due, now)


def start_again(scheduler: Scheduler, run: DagRun, spec: DagSpec, message: TimerFired) -> bool:
    """The backoff ended: dispatch the try again if it still waits QUEUED at that
    try number (a redelivered or late timer changes nothing)."""
    if message.task_id is None or message.try_number is None:
        return False
    ti = scheduler.store.get_instance(run.dag_id, run.run_id, message.task_id, message.map_index)
    if ti is None or ti.state is not TaskState.QUEUED or ti.try_number != message.try_number:
        return False
    executor = spec.task(ti.task_id).executor
    cmd = RequeueTask(ti.task_id, ti.map_index, ti.try_number, executor)
    return scheduler._dispatch(spec, run, cmd, scheduler.clock(), attempt=message.attempt)


__all__ = ["START_ATTEMPTS", "backoff_seconds", "start_again", "start_refused"]
