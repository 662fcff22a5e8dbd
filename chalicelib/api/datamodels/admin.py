"""Pools, the event log, API keys, version and health, in Airflow 3's shapes
(API keys are Slipstream's own)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from chalicelib.api.datamodels.common import ApiModel, BodyModel, Instant, Paging

PoolSlots = Annotated[int, Field(ge=-1, le=2**31 - 1)]
"""-1 is unlimited; the bound is Airflow's column type, and keeps a slot count
a number DynamoDB can store."""
PoolName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[\w.\-]+$")]


class VersionInfo(ApiModel):
    version: str
    git_version: str | None


class StatusInfo(ApiModel):
    status: str | None


class SchedulerInfo(StatusInfo):
    latest_scheduler_heartbeat: str | None


class TriggererInfo(StatusInfo):
    latest_triggerer_heartbeat: str | None


class HealthInfo(ApiModel):
    metadatabase: StatusInfo
    scheduler: SchedulerInfo
    triggerer: TriggererInfo
    dag_processor: StatusInfo | None = None


class PoolResponse(ApiModel):
    name: str
    slots: int
    description: str | None
    include_deferred: bool = False
    occupied_slots: int
    running_slots: int
    queued_slots: int
    scheduled_slots: int
    open_slots: int
    deferred_slots: int = 0
    team_name: str | None = None


class PoolCollection(ApiModel):
    pools: list[PoolResponse]
    total_entries: int


class PoolBody(BodyModel):
    name: PoolName
    slots: PoolSlots
    description: str | None = None
    include_deferred: bool = False
    team_name: str | None = None


class PoolPatchBody(BodyModel):
    pool: PoolName | None = None
    slots: PoolSlots | None = None
    description: str | None = None
    include_deferred: bool | None = None
    team_name: str | None = None


class PoolPatchQuery(Paging):
    update_mask: list[str] = Field(default_factory=list)


class EventLogResponse(ApiModel):
    event_log_id: int
    when: dt.datetime
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    try_number: int | None
    event: str
    logical_date: dt.datetime | None = None
    owner: str | None
    extra: str | None
    dag_display_name: str | None = None
    task_display_name: str | None = None


class EventLogCollection(ApiModel):
    event_logs: list[EventLogResponse]
    total_entries: int


class EventLogQuery(Paging):
    order_by: Literal["id", "-id", "event_log_id", "-event_log_id", "when", "-when"] = "id"
    dag_id: str | None = None
    event: str | None = None


class ApiKeyResponse(ApiModel):
    key_id: str
    name: str | None
    tenant: str
    role: Literal["viewer", "user", "op", "admin"]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class CreatedApiKey(ApiKeyResponse):
    api_key: str = Field(description="The key itself: shown only in this answer, never again.")


class ApiKeyCollection(ApiModel):
    api_keys: list[ApiKeyResponse]
    total_entries: int


class ApiKeyBody(BodyModel):
    role: Literal["viewer", "user", "op", "admin"]
    name: Annotated[str, Field(max_length=200)] | None = None
    expires_at: Instant | None = None
