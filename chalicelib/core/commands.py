"""What the engine reads and says: events in, commands out, and its view of a run.

Split from core.engine so the decision (engine) and the cascade of trigger-rule
evaluations (core.evaluation) share these types without importing each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.core.fan_in import FanInCounts
from chalicelib.core.runs import TaskInstance
from chalicelib.core.slots import SlotClaim
from chalicelib.core.spec import ExecutorSpec
from chalicelib.core.states import DagRunState, TaskState

# ---------------------------------------------------------------- events in


@dataclass(frozen=True)
class RunStarted:
    """A run moved to RUNNING: its root tasks (and ``always`` tasks) are evaluated."""


@dataclass(frozen=True)
class TaskFinished:
    """A task instance reached a finished state: its downstream tasks are evaluated."""

    task_id: str
    map_index: int = -1


@dataclass(frozen=True)
class RetryDue:
    """The timer of an up-for-retry or up-for-reschedule instance fired.

    ``early``: an event the sensor waits for arrived (an S3 upload); a
    rescheduled sensor pokes at once instead of at its ``next_try_at``. A retry's
    delay is never cut short."""

    task_id: str
    map_index: int = -1
    early: bool = False


@dataclass(frozen=True)
class TimeoutCheck:
    """Periodic check of ``dagrun_timeout`` and of tries running past ``execution_timeout``.

    This is the only event that reads every unfinished instance of a run; the
    tick sends it for running runs whose DAG declares a timeout.
    """


@dataclass(frozen=True)
class Reconcile:
    """Re-evaluate a whole run that made no progress for a while.

    The safety net for a lost hand-off (a worker that died between recording
    its outcome and starting the next tasks) and for a lost retry timer. It
    reads every task of the run, so the tick sends it only for stalled runs.
    ``queued_timeout`` overrides the engine's ``QUEUED_TIMEOUT`` (Airflow's
    ``task_queued_timeout`` is a setting too).
    ``heartbeat_timeout`` (the tick's) also fails, as "worker heartbeat lost", a
    RUNNING try that never beat and started longer ago than that: its worker
    died before its first heartbeat put it in the reaper's index.
    """

    queued_timeout: dt.timedelta | None = None
    heartbeat_timeout: dt.timedelta | None = None


@dataclass(frozen=True)
class PastChanged:
    """The previous run's instance of these tasks (or, for wait_for_downstream,
    a downstream of it) changed: evaluate only these tasks here (core.past)."""

    task_ids: tuple[str, ...]


Event = RunStarted | TaskFinished | RetryDue | TimeoutCheck | Reconcile | PastChanged


# ------------------------------------------------------------- commands out


@dataclass(frozen=True)
class SetTaskState:
    """Move one instance from ``expected`` to ``state`` (a conditional write)."""

    task_id: str
    map_index: int
    expected: TaskState
    state: TaskState
    try_number: int
    reason: str = ""
    next_try_at: dt.datetime | None = None
    held_slots: tuple[str, ...] = ()  # slots the try gives back (it was QUEUED/RUNNING)


@dataclass(frozen=True)
class ScheduleTask:
    """Start try ``try_number`` of an instance: ``expected`` -> SCHEDULED, then dispatch."""

    task_id: str
    map_index: int
    expected: TaskState
    try_number: int
    priority: int
    pool: str
    pool_slots: int
    executor: ExecutorSpec
    claims: tuple[SlotClaim, ...] = ()  # filled by the dispatcher: limits this try must pass
    # A rescheduled sensor pokes again in the same try (Airflow keeps try_number):
    # the instance is expected at ``try_number`` itself, not ``try_number - 1``.
    same_try: bool = False

    @property
    def expected_try(self) -> int:
        """The try number the instance has before this command's write."""
        return self.try_number if self.same_try else self.try_number - 1


@dataclass(frozen=True)
class RequeueTask:
    """Dispatch again a try that sat QUEUED past ``QUEUED_TIMEOUT``: its invoke was
    lost on the way (or its dispatcher died before sending it). The worker's claim
    still decides who starts it, so a late first invoke cannot run it twice."""

    task_id: str
    map_index: int
    try_number: int
    executor: ExecutorSpec


@dataclass(frozen=True)
class ExpandTask:
    """Replace a mapped task's placeholder with ``count`` instances (indices 0..count-1).

    ``window``: the map runs through a window of that many tries (core.map_window).
    """

    task_id: str
    count: int
    window: int | None = None


@dataclass(frozen=True)
class StartTimer:
    """Deliver ``event`` at ``due`` (an SQS delay message, or the tick for longer waits)."""

    event: RetryDue
    due: dt.datetime


@dataclass(frozen=True)
class FinishRun:
    state: DagRunState
    reason: str = ""


Command = SetTaskState | ScheduleTask | RequeueTask | ExpandTask | StartTimer | FinishRun


# ------------------------------------------------------------ the run view


@dataclass(frozen=True)
class TaskSummary:
    """What the engine needs to know about one task of a run.

    ``instance`` is the task's single instance when unmapped, or the mapped
    task's placeholder (map_index -1). Once a mapped task is expanded,
    ``mapped_count`` is set and ``state_counts`` tallies its instances;
    ``window`` is set when the map runs through one (core.map_window).
    """

    instance: TaskInstance
    mapped_count: int | None = None
    state_counts: Mapping[TaskState, int] = field(default_factory=dict)
    window: int | None = None

    @property
    def expanded(self) -> bool:
        return self.mapped_count is not None

    def count(self, state: TaskState) -> int:
        if self.mapped_count is None:
            return 1 if self.instance.state is state else 0
        return self.state_counts.get(state, 0)


class RunStateView(Protocol):
    """Read-only access to one run's task instances, loaded on demand.

    ``summaries`` is called once per cascade wave with every task id that
    wave needs, so a store can fetch them in one batch.
    """

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]: ...

    def fan_in(self, join_ids: Collection[str]) -> Mapping[str, FanInCounts]:
        """Each wide join's counts of its counted upstream tasks per finished
        state (``spec.fan_ins``); read with the summaries of the same wave."""
        ...

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None: ...

    def unfinished(self) -> Iterable[TaskInstance]: ...
