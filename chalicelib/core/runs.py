"""Plain records of a DAG run and its task instances, as the engine sees them.

These are what every state store (in memory, DynamoDB) hands the engine; they
carry no behaviour beyond small derived properties.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from chalicelib.core.states import DagRunState, TaskState


class RunType(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    EVENT = "event"
    ASSET_TRIGGERED = "asset_triggered"  # a DAG's asset condition was met


def make_run_id(run_type: RunType, when: dt.datetime, event_id: str | None = None) -> str:
    """Deterministic run ids, so a repeated tick or event creates nothing new."""
    if run_type is RunType.EVENT:
        if not event_id:
            raise ValueError("an event run id needs the event id")
        return f"event__{event_id}"
    return f"{run_type.value}__{when.astimezone(dt.UTC).isoformat()}"


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    run_type: RunType
    logical_date: dt.datetime | None
    data_interval_start: dt.datetime | None
    data_interval_end: dt.datetime | None
    run_after: dt.datetime
    version: str = ""  # content hash of the pinned DAG version
    conf: dict[str, Any] = field(default_factory=dict)
    state: DagRunState = DagRunState.QUEUED
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    note: str | None = None  # set when triggered or later through the API; shown, never used
    tenant: str | None = None  # the DAG's tenant when the run was made: whose secrets it reads
    backfill_id: int | None = None  # the backfill that made it (finishing it advances that one)

    def with_state(self, state: DagRunState, **changes: Any) -> DagRun:
        return replace(self, state=state, **changes)


@dataclass(frozen=True)
class TaskInstance:
    """One task (or one mapped index of it) in one run.

    ``try_number`` counts tries started, so it is 1 during the first try, as
    Airflow shows it; ``map_index`` is -1 for an unmapped task and for a mapped
    task that has not been expanded yet.
    """

    task_id: str
    map_index: int = -1
    state: TaskState = TaskState.NONE
    try_number: int = 0
    queued_at: dt.datetime | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    next_try_at: dt.datetime | None = None
    skip_downstream: tuple[str, ...] | None = None  # set by branching and short-circuit
    result_length: int | None = None  # len() of a list/dict result, for mapping
    rendered_map_index: str | None = None  # the task's map_index_template, rendered
    rendered_fields: str | None = None  # JSON of the last try's rendered template fields
    error: str | None = None
    slots: tuple[str, ...] = ()  # slot claims held while QUEUED/RUNNING ("key|amount")
    wait_key: str | None = None  # SCHEDULED and waiting for a slot of this counter
    wait_rank: str | None = None
    # Tries used before an operator's last clear: a cleared task gets its retries
    # again, as Airflow's (which raises max_tries on clear).
    retry_base: int = 0
    # Tries ended by an infrastructure failure (AWS throttled or down while the
    # try resolved its inputs): retried without counting against ``retries``,
    # at most MAX_INFRASTRUCTURE_RETRIES times (core.retries).
    infra_failures: int = 0
    # When a sensor's try first poked (Airflow's first reschedule date): its
    # ``timeout`` counts from here across reschedules of the same try.
    first_poke_at: dt.datetime | None = None
    # Where the executor started the try (an ECS task ARN), as Airflow's
    # external_executor_id: lets a mark stop the container and a stop event find it.
    external_executor_id: str | None = None
    # A RUNNING try's last heartbeat, as Airflow's last_heartbeat_at. None until
    # its worker's first beat: a try enters the heartbeat index only then, so a
    # worker lost before it is found by reconciliation (core.engine), not the reaper.
    last_heartbeat_at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.map_index)

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    def evolve(self, **changes: Any) -> TaskInstance:
        return replace(self, **changes)
