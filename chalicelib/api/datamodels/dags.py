"""DAGs, their tasks and versions, in Airflow 3's shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from chalicelib.api.datamodels.common import (
    ApiModel,
    BodyModel,
    DagVersionResponse,
    Paging,
    QueryModel,
    TimeDelta,
)

DAG_ORDER_FIELDS = ("dag_id", "-dag_id", "dag_display_name", "-dag_display_name")


class DagTag(ApiModel):
    name: str
    dag_id: str
    dag_display_name: str


class DagResponse(ApiModel):
    dag_id: str
    dag_display_name: str
    is_paused: bool
    is_stale: bool
    last_parsed_time: dt.datetime | None
    last_parse_duration: float | None = None
    last_expired: dt.datetime | None = None
    bundle_name: str | None
    bundle_version: str | None
    relative_fileloc: str | None
    fileloc: str
    description: str | None
    timetable_summary: str | None
    timetable_description: str | None
    timetable_periodic: bool
    timetable_partitioned: bool = False
    tags: list[DagTag]
    max_active_tasks: int
    max_active_runs: int | None
    max_consecutive_failed_dag_runs: int = 0
    has_task_concurrency_limits: bool
    has_import_errors: bool = False
    next_dagrun_logical_date: dt.datetime | None = None
    next_dagrun_data_interval_start: dt.datetime | None = None
    next_dagrun_data_interval_end: dt.datetime | None = None
    next_dagrun_run_after: dt.datetime | None = None
    allowed_run_types: list[str] | None = None
    owners: list[str]
    file_token: str
    is_backfillable: bool


class DagCollection(ApiModel):
    dags: list[DagResponse]
    total_entries: int


class DagDetailsResponse(DagResponse):
    catchup: bool
    dag_run_timeout: str | None
    asset_expression: dict[str, Any] | None = None
    doc_md: str | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    is_paused_upon_creation: bool | None = None
    params: dict[str, Any] | None
    render_template_as_native_obj: bool = False
    template_search_path: list[str] | None = None
    timezone: str | None
    last_parsed: dt.datetime | None
    default_args: dict[str, Any] | None = None
    owner_links: dict[str, str] | None = None
    is_favorite: bool = False
    active_runs_count: int = 0
    latest_dag_version: DagVersionResponse | None
    concurrency: int


class DagListQuery(Paging):
    order_by: Literal[DAG_ORDER_FIELDS] = "dag_id"  # type: ignore[valid-type]
    tags: list[str] = Field(default_factory=list)
    tags_match_mode: Literal["any", "all"] = "any"
    owners: list[str] = Field(default_factory=list)
    dag_id_pattern: str | None = None
    dag_display_name_pattern: str | None = None
    exclude_stale: bool = True
    paused: bool | None = None


class DagPatchBody(BodyModel):
    is_paused: bool


class DagPatchQuery(QueryModel):
    update_mask: list[str] = Field(default_factory=list)


class DagBulkPatchQuery(DagPatchQuery):
    limit: int = Field(default=50, ge=0, le=1000)
    offset: int = Field(default=0, ge=0)
    tags: list[str] = Field(default_factory=list)
    tags_match_mode: Literal["any", "all"] = "any"
    owners: list[str] = Field(default_factory=list)
    dag_id_pattern: str | None = None
    exclude_stale: bool = True
    paused: bool | None = None


class TaskResponse(ApiModel):
    task_id: str
    task_display_name: str
    owner: str | None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    trigger_rule: str
    depends_on_past: bool = False
    wait_for_downstream: bool = False
    retries: int
    queue: str | None = None
    pool: str
    pool_slots: int
    execution_timeout: TimeDelta | None
    retry_delay: TimeDelta | None
    retry_exponential_backoff: float
    priority_weight: int
    weight_rule: str
    ui_color: str = "#fff"
    ui_fgcolor: str = "#000"
    template_fields: list[str]
    downstream_task_ids: list[str]
    doc_md: str | None
    operator_name: str
    params: dict[str, Any] | None
    class_ref: dict[str, Any]
    is_mapped: bool
    extra_links: list[str] = Field(default_factory=list)


class TaskCollection(ApiModel):
    tasks: list[TaskResponse]
    total_entries: int


class TaskListQuery(QueryModel):
    order_by: str = "task_id"


class VersionListQuery(Paging):
    order_by: Literal["id", "-id", "version_number", "-version_number"] = "id"
