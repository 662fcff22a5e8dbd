"""The messages that cross process boundaries: scheduler queue and worker invocations.

Versioned pydantic models with a ``type`` discriminator (as Airflow 3's task
SDK comms do), so a worker or scheduler of another version rejects what it
cannot read instead of guessing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1


class RunTarget(_Message):
    dag_id: str
    run_id: str


class RunCreated(RunTarget):
    """A run was created (tick, API, event, backfill): start it when slots allow."""

    type: Literal["run_created"] = "run_created"


class TaskFinishedMessage(RunTarget):
    """A try reached a finished state: evaluate its downstream (the safety net
    behind the worker's own mini-scheduling)."""

    type: Literal["task_finished"] = "task_finished"
    task_id: str
    map_index: int = -1
    try_number: int


class TimerFired(RunTarget):
    """A delayed message came due: a retry delay ended, or a timeout check."""

    type: Literal["timer"] = "timer"
    kind: Literal["retry", "timeout_check"] = "retry"
    task_id: str | None = None
    map_index: int = -1


SchedulerMessage = Annotated[
    RunCreated | TaskFinishedMessage | TimerFired, Field(discriminator="type")
]
SCHEDULER_MESSAGE = TypeAdapter(SchedulerMessage)


DAG_CALLBACK_TASK = "__dag_callback__"
"""Reserved task id: a worker message that runs the DAG's on_success/on_failure
callbacks after its run ended, instead of a try."""


class WorkerMessage(_Message):
    """Run one try: everything a worker needs to find its work, nothing more."""

    type: Literal["run_try"] = "run_try"
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int
    version: str  # content hash of the run's pinned DAG version
    # True when the worker hand-off dispatched this try without queueing it
    # first: the worker then claims it from NONE (see the store's ``claim``).
    direct: bool = False

    @property
    def label(self) -> str:
        suffix = "" if self.map_index < 0 else f"[{self.map_index}]"
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{suffix}#{self.try_number}"
