"""Shapes shared by several resources: paging, time deltas, versions."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

MAX_PAGE = 1000
DEFAULT_PAGE = 50
NAMESPACE = uuid.UUID("5d1f0b9e-6f51-4a53-9d0c-2b1d8b6f7a10")
"""Names Slipstream's UUIDs: deterministic ids for things keyed by strings here."""


def stable_uuid(*parts: object) -> uuid.UUID:
    """A UUID where Airflow has one (DAG versions, task instances), derived from
    the natural key so the same object always has the same id."""
    return uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts))


EARLIEST = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
"""Four-digit years with centuries to spare: schedules step from a date and the
store keeps it in UTC, and both overflow at the calendar's ends (found by
schemathesis: year 9999 or year 1 east of UTC made a 500)."""


def _storable(value: dt.datetime) -> dt.datetime:
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"date must be from {EARLIEST.year} up to {LATEST.year} (UTC)")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_storable)]
"""An aware date-time the API accepts: one it can store and schedule from."""


class ApiModel(BaseModel):
    """Every API model: validators are built on first use, not at import.

    The API Lambda imports every route's models on a cold start, but a request
    uses two or three of them; building all schemas up front was most of the
    API function's import time (bench/cold_start.py).
    """

    model_config = ConfigDict(defer_build=True)


class QueryModel(ApiModel):
    """Unknown query parameters are ignored, as FastAPI ignores them."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class BodyModel(ApiModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class Paging(QueryModel):
    limit: Annotated[int, Field(ge=0, le=MAX_PAGE)] = DEFAULT_PAGE
    offset: Annotated[int, Field(ge=0)] = 0


class TimeDelta(ApiModel):
    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    type_: Literal["TimeDelta"] = Field(default="TimeDelta", alias="__type")
    days: int
    seconds: int
    microseconds: int

    @classmethod
    def of_seconds(cls, seconds: float | None) -> TimeDelta | None:
        if seconds is None:
            return None
        delta = dt.timedelta(seconds=seconds)
        return cls(days=delta.days, seconds=delta.seconds, microseconds=delta.microseconds)


class DagVersionResponse(ApiModel):
    id: uuid.UUID
    version_number: int
    dag_id: str
    bundle_name: str | None
    bundle_version: str | None
    created_at: dt.datetime
    dag_display_name: str
    bundle_url: str | None = None


class DagVersionCollection(ApiModel):
    dag_versions: list[DagVersionResponse]
    total_entries: int
