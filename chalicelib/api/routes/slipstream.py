"""Slipstream's own read-outs under ``/api/v2/slipstream``: what starts a DAG
from events, and the serialized spec of one of its versions."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from pydantic import BaseModel

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.common import current_spec, visible_dag
from chalicelib.api.routing import Call, route

bp = Blueprint(__name__)
TAG = "Slipstream"


class EventTriggerResponse(BaseModel):
    type: str
    description: dict[str, Any]
    event_pattern: dict[str, Any]


class EventTriggerCollection(BaseModel):
    dag_id: str
    triggers: list[EventTriggerResponse]
    total_entries: int


class VersionSpec(BaseModel):
    dag_id: str
    version_number: int
    content_hash: str
    spec: dict[str, Any]


@route(
    bp,
    "/slipstream/dags/{dag_id}/eventTriggers",
    "GET",
    role=Role.VIEWER,
    response=EventTriggerCollection,
    tag=TAG,
)
def get_event_triggers(call: Call) -> EventTriggerCollection:
    """The S3 and EventBridge events that start runs of a DAG's current version,
    with the EventBridge pattern each one is routed by."""
    record = visible_dag(call, call.path["dag_id"])
    spec = current_spec(record)
    triggers = [
        EventTriggerResponse(
            type=trigger.type,
            description=trigger.model_dump(exclude={"type"}),
            event_pattern=trigger.event_pattern(),
        )
        for trigger in spec.events
    ]
    return EventTriggerCollection(
        dag_id=record.dag_id, triggers=triggers, total_entries=len(triggers)
    )


@route(
    bp,
    "/slipstream/dags/{dag_id}/dagVersions/{version_number}/spec",
    "GET",
    role=Role.VIEWER,
    response=VersionSpec,
    tag=TAG,
)
def get_version_spec(call: Call) -> VersionSpec:
    """The serialized spec the scheduler reads for one version (no code: callables
    are named, not included)."""
    record = visible_dag(call, call.path["dag_id"])
    text = call.path["version_number"]
    if not text.isdigit():
        raise BadRequest(f"version_number must be an integer, not {text!r}")
    row = deps.catalog().version_by_number(record.dag_id, int(text))
    if row is None:
        raise NotFound(f"DAG {record.dag_id} has no version {text}")
    spec = deps.specs().get(record.dag_id, row.version)
    return VersionSpec(
        dag_id=record.dag_id,
        version_number=row.number,
        content_hash=spec.content_hash,
        spec=spec.model_dump(mode="json", by_alias=True),
    )
