"""Airflow 3's asset shapes (AssetResponse, AssetEventResponse, CreateAssetEventsBody,
QueuedEventResponse), as apache-airflow-client reads them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from chalicelib.api.datamodels.common import BodyModel, Paging


class DagScheduleAssetReference(BaseModel):
    dag_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


class TaskOutletAssetReference(BaseModel):
    dag_id: str
    task_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


class LastAssetEventResponse(BaseModel):
    id: int | None = None
    timestamp: dt.datetime | None = None


class AssetResponse(BaseModel):
    id: int
    name: str
    uri: str
    group: str
    extra: dict[str, Any] | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    scheduled_dags: list[DagScheduleAssetReference]
    producing_tasks: list[TaskOutletAssetReference]
    consuming_tasks: list[TaskOutletAssetReference] = Field(default_factory=list)
    aliases: list[dict[str, Any]] = Field(default_factory=list)
    watchers: list[dict[str, Any]] = Field(default_factory=list)
    last_asset_event: LastAssetEventResponse | None = None


class AssetCollectionResponse(BaseModel):
    assets: list[AssetResponse]
    total_entries: int


class AssetListQuery(Paging):
    name_pattern: str | None = None
    uri_pattern: str | None = None
    order_by: Literal["id", "-id"] = "id"


class DagRunAssetReference(BaseModel):
    run_id: str
    dag_id: str
    logical_date: dt.datetime | None = None
    start_date: dt.datetime
    end_date: dt.datetime | None = None
    state: str
    data_interval_start: dt.datetime | None = None
    data_interval_end: dt.datetime | None = None
    triggering: bool = True


class AssetEventResponse(BaseModel):
    id: int
    asset_id: int
    uri: str | None = None
    name: str | None = None
    group: str | None = None
    extra: dict[str, Any] | None = None
    source_task_id: str | None = None
    source_dag_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int
    created_dagruns: list[DagRunAssetReference]
    timestamp: dt.datetime


class AssetEventCollectionResponse(BaseModel):
    asset_events: list[AssetEventResponse]
    total_entries: int


class AssetEventQuery(Paging):
    asset_id: int | None = None
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int | None = None
    timestamp_gte: dt.datetime | None = None
    timestamp_lte: dt.datetime | None = None
    order_by: Literal["id", "-id", "timestamp", "-timestamp"] = "timestamp"


class CreateAssetEventsBody(BodyModel):
    asset_id: int
    extra: dict[str, Any] = Field(default_factory=dict)
    partition_key: Annotated[str, Field(max_length=250)] | None = None
    access_control: dict[str, Any] | None = None  # accepted; Slipstream has no teams


class QueuedEventResponse(BaseModel):
    dag_id: str
    asset_id: int
    created_at: dt.datetime
    dag_display_name: str


class QueuedEventCollectionResponse(BaseModel):
    queued_events: list[QueuedEventResponse]
    total_entries: int
