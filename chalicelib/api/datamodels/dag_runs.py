"""DAG runs in Airflow 3's shapes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from chalicelib.api.datamodels.common import (
    ApiModel,
    BodyModel,
    DagVersionResponse,
    Instant,
    Paging,
)

RunTypeName = Literal[
    "backfill",
    "scheduled",
    "manual",
    "operator_triggered",
    "asset_triggered",
    "asset_materialization",
]
RunStateName = Literal["queued", "running", "success", "failed"]
RUN_ORDER_FIELDS = (
    "id",
    "state",
    "dag_id",
    "run_id",
    "logical_date",
    "run_after",
    "start_date",
    "end_date",
    "updated_at",
    "conf",
    "duration",
    "dag_run_id",
)


class DagRunResponse(ApiModel):
    dag_run_id: str
    dag_id: str
    logical_date: dt.datetime | None
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    data_interval_start: dt.datetime | None
    data_interval_end: dt.datetime | None
    run_after: dt.datetime
    last_scheduling_decision: dt.datetime | None = None
    run_type: RunTypeName
    state: RunStateName
    triggered_by: str | None
    triggering_user_name: str | None = None
    conf: dict[str, Any] | None
    note: str | None
    dag_versions: list[DagVersionResponse]
    bundle_version: str | None
    dag_display_name: str
    partition_key: str | None = None


class DagRunCollection(ApiModel):
    dag_runs: list[DagRunResponse]
    total_entries: int


class TriggerBody(BodyModel):
    dag_run_id: str | None = None
    data_interval_start: Instant | None = None
    data_interval_end: Instant | None = None
    logical_date: Instant | None = None
    run_after: Instant | None = None
    conf: dict[str, Any] | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None
    partition_key: str | None = None

    @field_validator("dag_run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "/" in value or len(value) > 250):
            raise ValueError("dag_run_id must be 1-250 characters and contain no '/'")
        return value


class DagRunListQuery(Paging):
    order_by: str = "id"
    run_after_gte: Instant | None = None
    run_after_lte: Instant | None = None
    run_after_gt: Instant | None = None
    run_after_lt: Instant | None = None
    logical_date_gte: Instant | None = None
    logical_date_lte: Instant | None = None
    logical_date_gt: Instant | None = None
    logical_date_lt: Instant | None = None
    start_date_gte: Instant | None = None
    start_date_lte: Instant | None = None
    end_date_gte: Instant | None = None
    end_date_lte: Instant | None = None
    state: list[RunStateName] = Field(default_factory=list)
    run_type: list[RunTypeName] = Field(default_factory=list)
    run_id_pattern: str | None = None


class DagRunPatchBody(BodyModel):
    state: Literal["queued", "success", "failed"] | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None


class UpdateMaskQuery(Paging):
    update_mask: list[str] = Field(default_factory=list)


class DagRunsBatchBody(BodyModel):
    """Airflow's body for listing runs of many DAGs (POST .../~/dagRuns/list)."""

    dag_ids: list[str] | None = None
    states: list[RunStateName | None] | None = None
    page_offset: Annotated[int, Field(ge=0)] = 0
    page_limit: Annotated[int, Field(ge=0, le=1000)] = 100
    order_by: str | None = None
    run_after_gte: Instant | None = None
    run_after_lte: Instant | None = None
    logical_date_gte: Instant | None = None
    logical_date_lte: Instant | None = None
    start_date_gte: Instant | None = None
    start_date_lte: Instant | None = None
    end_date_gte: Instant | None = None
    end_date_lte: Instant | None = None
    conf_contains: str | None = None
    duration_gte: float | None = None
    duration_lte: float | None = None
    duration_gt: float | None = None
    duration_lt: float | None = None
    run_after_gt: Instant | None = None
    run_after_lt: Instant | None = None
    logical_date_gt: Instant | None = None
    logical_date_lt: Instant | None = None
    start_date_gt: Instant | None = None
    start_date_lt: Instant | None = None
    end_date_gt: Instant | None = None
    end_date_lt: Instant | None = None
