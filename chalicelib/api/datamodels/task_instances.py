"""Task instances in Airflow 3's shapes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import Field

from chalicelib.api.datamodels.common import ApiModel, DagVersionResponse, Paging

TaskStateName = Literal[
    "removed",
    "scheduled",
    "queued",
    "running",
    "success",
    "restarting",
    "failed",
    "up_for_retry",
    "up_for_reschedule",
    "upstream_failed",
    "skipped",
    "deferred",
]
NO_STATUS = "no_status"
"""How Airflow's API names the null state in a ``state`` filter."""


class TryResponse(ApiModel):
    """One try of a task instance (Airflow's TaskInstanceHistoryResponse); a task
    instance is its latest try plus what only the instance has."""

    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    state: TaskStateName | None
    try_number: int
    max_tries: int
    task_display_name: str
    dag_display_name: str
    hostname: str | None = None
    unixname: str | None = None
    pool: str
    pool_slots: int
    queue: str | None = None
    priority_weight: int | None
    operator: str | None
    operator_name: str | None
    queued_when: dt.datetime | None
    scheduled_when: dt.datetime | None = None
    pid: int | None = None
    executor: str | None
    executor_config: str = "{}"
    dag_version: DagVersionResponse | None


class TaskInstanceResponse(TryResponse):
    id: uuid.UUID
    logical_date: dt.datetime | None
    run_after: dt.datetime
    note: str | None = None
    rendered_map_index: str | None = None
    rendered_fields: dict[str, Any] = Field(default_factory=dict)
    trigger: None = None
    triggerer_job: None = None


class TryCollection(ApiModel):
    task_instances: list[TryResponse]
    total_entries: int


class TaskInstanceCollection(ApiModel):
    task_instances: list[TaskInstanceResponse]
    total_entries: int | None  # null where counting would read every run ("~" lists)


class TaskInstanceListQuery(Paging):
    state: list[str] = Field(default_factory=list)
    task_id: str | None = None
    map_index: list[int] = Field(default_factory=list)
    order_by: str = "map_index"
