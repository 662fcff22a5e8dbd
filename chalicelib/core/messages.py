"""The messages that cross process boundaries: scheduler queue and worker invocations.

Versioned pydantic models with a ``type`` discriminator (as Airflow 3's task
SDK comms do), so a worker or scheduler of another version rejects what it
cannot read instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from chalicelib.core.runs import DagRun, RunType
from chalicelib.core.states import DagRunState


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
    """A delayed message came due: a retry delay ended, a timeout check, or a
    refused start's backoff ("dispatch": start ``try_number`` again, ``attempt``
    counting the starts tried so far plus this one)."""

    type: Literal["timer"] = "timer"
    kind: Literal["retry", "timeout_check", "dispatch"] = "retry"
    task_id: str | None = None
    map_index: int = -1
    try_number: int | None = None
    attempt: int = 0


class RunChanged(RunTarget):
    """An operator cleared or marked instances of the run: start it again if it was
    reopened, re-evaluate it whole, and finish it if nothing is left to run."""

    type: Literal["run_changed"] = "run_changed"


SchedulerMessage = Annotated[
    RunCreated | TaskFinishedMessage | TimerFired | RunChanged, Field(discriminator="type")
]
SCHEDULER_MESSAGE = TypeAdapter(SchedulerMessage)


DAG_CALLBACK_TASK = "__dag_callback__"
"""Reserved task id: a worker message that runs the DAG's on_success/on_failure
callbacks after its run ended, instead of a try."""


SNAPSHOT_CONF_BYTES = 2_000
"""A run whose conf is bigger is not copied into worker messages (ECS limits a
task's overrides to 8 KB); its workers read the run instead."""


class RunSnapshot(BaseModel):
    """The run as its dispatcher held it: all a worker needs for the task's
    context, so a try does not have to read it. As fresh as a read at the
    worker's start would be; the claim, not the run, decides whether it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_type: RunType
    logical_date: dt.datetime | None
    data_interval_start: dt.datetime | None
    data_interval_end: dt.datetime | None
    run_after: dt.datetime
    version: str
    conf: dict[str, Any]
    state: DagRunState
    start_date: dt.datetime | None = None
    tenant: str | None = None
    backfill_id: int | None = None

    @classmethod
    def of(cls, run: DagRun) -> RunSnapshot | None:
        if len(json.dumps(run.conf, default=str)) > SNAPSHOT_CONF_BYTES:
            return None
        return cls(**{name: getattr(run, name) for name in cls.model_fields})

    def to_run(self, dag_id: str, run_id: str) -> DagRun:
        return DagRun(dag_id=dag_id, run_id=run_id, **self.model_dump())


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
    run: RunSnapshot | None = None  # None: the worker reads the run

    @property
    def label(self) -> str:
        suffix = "" if self.map_index < 0 else f"[{self.map_index}]"
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{suffix}#{self.try_number}"
