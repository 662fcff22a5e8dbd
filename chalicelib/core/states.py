"""Task and run states with the transitions allowed between them, as data.

Names match Airflow's so that users, the UI and the API speak one language.
Every member says who sets it: the engine (pure decisions), the dispatcher
(the adapter that hands a try to an executor), or the worker running the try.
"""

from __future__ import annotations

from enum import StrEnum

from chalicelib.core.errors import IllegalTransition


class TaskState(StrEnum):
    NONE = "none"  # created, waiting for its trigger rule (Airflow's "no status")
    SCHEDULED = "scheduled"  # engine: trigger rule passed, waiting for a slot
    QUEUED = "queued"  # dispatcher: handed to an executor
    RUNNING = "running"  # worker: the try is claimed and running
    SUCCESS = "success"  # worker
    FAILED = "failed"  # worker, or engine on timeout with no retries left
    UP_FOR_RETRY = "up_for_retry"  # worker or engine: failed, will try again
    # worker: a sensor's poke was not satisfied; the same try pokes again on a timer
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"  # engine: trigger rule can never pass
    SKIPPED = "skipped"  # engine (rules, branching) or worker (TaskSkipped)
    REMOVED = "removed"  # engine: the task left the DAG or a map shrank

    @property
    def finished(self) -> bool:
        return self in FINISHED_TASK_STATES


class DagRunState(StrEnum):
    QUEUED = "queued"  # created, not yet started (max_active_runs)
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (DagRunState.SUCCESS, DagRunState.FAILED)


WAITING_ON_TIMER = frozenset({TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE})
"""States whose instance waits for a timer (``next_try_at``) before its next dispatch."""

FINISHED_TASK_STATES = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
        TaskState.SKIPPED,
        TaskState.REMOVED,
    }
)

T = TaskState
# Clearing a task (a later issue) goes back to NONE from any finished state.
# NONE -> FAILED is the engine failing a task that cannot start (a bad map input).
# NONE/UP_FOR_RETRY -> QUEUED: the serverless dispatcher queues a try in the same
# write that schedules it when no slot has to be waited for (one write, not two).
TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # NONE -> RUNNING: a worker claims a try the hand-off dispatched without queueing it.
    T.NONE: frozenset(
        {T.SCHEDULED, T.QUEUED, T.RUNNING, T.SKIPPED, T.UPSTREAM_FAILED, T.REMOVED, T.FAILED}
    ),
    T.SCHEDULED: frozenset({T.QUEUED, T.SKIPPED, T.UPSTREAM_FAILED, T.REMOVED, T.NONE}),
    # QUEUED -> QUEUED: dispatched again after task_queued_timeout (RequeueTask).
    T.QUEUED: frozenset({T.QUEUED, T.RUNNING, T.FAILED, T.UP_FOR_RETRY, T.SCHEDULED, T.SKIPPED}),
    T.RUNNING: frozenset({T.SUCCESS, T.FAILED, T.UP_FOR_RETRY, T.UP_FOR_RESCHEDULE, T.SKIPPED}),
    T.UP_FOR_RETRY: frozenset({T.SCHEDULED, T.QUEUED, T.FAILED, T.SKIPPED, T.NONE}),
    # A rescheduled sensor holds no slot and no worker; its timer queues the same try.
    T.UP_FOR_RESCHEDULE: frozenset({T.SCHEDULED, T.QUEUED, T.FAILED, T.SKIPPED, T.NONE}),
    T.SUCCESS: frozenset({T.NONE}),
    T.FAILED: frozenset({T.NONE}),
    T.UPSTREAM_FAILED: frozenset({T.NONE}),
    T.SKIPPED: frozenset({T.NONE}),
    T.REMOVED: frozenset({T.NONE}),
}

R = DagRunState
RUN_TRANSITIONS: dict[DagRunState, frozenset[DagRunState]] = {
    R.QUEUED: frozenset({R.RUNNING, R.FAILED}),
    R.RUNNING: frozenset({R.SUCCESS, R.FAILED}),
    R.SUCCESS: frozenset({R.QUEUED}),
    R.FAILED: frozenset({R.QUEUED}),
}


MARK_TARGETS = frozenset({T.SUCCESS, T.FAILED, T.SKIPPED})
"""States an operator may mark a task instance with (Airflow's "mark success/failed/
skipped"), from any other state: outside the engine's rules, so checked apart."""


def check_mark(source: TaskState, target: TaskState, subject: str = "") -> None:
    if target not in MARK_TARGETS or source is target:
        raise IllegalTransition("task", source.value, target.value, subject)


def check_task_transition(source: TaskState, target: TaskState, subject: str = "") -> None:
    if target not in TASK_TRANSITIONS[source]:
        raise IllegalTransition("task", source.value, target.value, subject)


def check_run_transition(source: DagRunState, target: DagRunState, subject: str = "") -> None:
    if target not in RUN_TRANSITIONS[source]:
        raise IllegalTransition("run", source.value, target.value, subject)
