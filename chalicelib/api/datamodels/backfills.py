"""Backfills in Airflow 3's shapes (``BackfillResponse``, ``BackfillPostBody``, ...)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field

from chalicelib.api.datamodels.common import ApiModel, BodyModel, Instant, Paging

ReprocessName = Literal["failed", "completed", "none"]


class BackfillPostBody(BodyModel):
    dag_id: str
    from_date: Instant
    to_date: Instant
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: ReprocessName = "none"
    max_active_runs: Annotated[int, Field(ge=1)] = 10
    # Accepted for Airflow's clients; runs always use the DAG's current version here.
    run_on_latest_version: bool | None = None


class BackfillResponse(ApiModel):
    id: int
    dag_id: str
    from_date: dt.datetime
    to_date: dt.datetime
    dag_run_conf: dict[str, Any]
    is_paused: bool
    reprocess_behavior: ReprocessName
    max_active_runs: int
    created_at: dt.datetime
    completed_at: dt.datetime | None
    updated_at: dt.datetime
    dag_display_name: str


class BackfillCollectionResponse(ApiModel):
    backfills: list[BackfillResponse]
    total_entries: int


class DryRunBackfillResponse(ApiModel):
    logical_date: dt.datetime | None
    partition_key: str | None = None
    partition_date: dt.datetime | None = None


class SkippedDate(ApiModel):
    """Slipstream only: a date in range that gets no run, and why."""

    logical_date: dt.datetime
    reason: str


class DryRunBackfillCollectionResponse(ApiModel):
    backfills: list[DryRunBackfillResponse]
    total_entries: int
    skipped: list[SkippedDate] = Field(default_factory=list)


class BackfillListQuery(Paging):
    dag_id: str
    order_by: list[str] = Field(default_factory=lambda: ["id"])
