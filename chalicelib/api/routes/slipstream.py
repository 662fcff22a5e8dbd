"""Slipstream's own read-outs under ``/api/v2/slipstream``: what starts a DAG
from events, the serialized spec of one of its versions, and the AWS calls and
cost of a run, and its deadline alerts."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from chalice import Blueprint
from pydantic import BaseModel

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.common import current_spec, visible_dag, visible_run
from chalicelib.api.routing import Call, route
from chalicelib.core.dag_summary import event_triggers
from chalicelib.core.pricing import estimate
from chalicelib.store.usage import USAGE_EVENT

bp = Blueprint(__name__)
TAG = "Slipstream"
DEFAULT_WORKER_MEMORY_MB = 512
"""The worker Lambda's memory (.chalice/config.json) when the stage does not say."""


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
    triggers = [EventTriggerResponse(**t) for t in event_triggers(current_spec(record))]
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


class RunUsage(BaseModel):
    dag_id: str
    dag_run_id: str
    tries_metered: int
    worker_seconds: float
    calls: dict[str, dict[str, int]]
    total_calls: int
    estimated_cost_usd: dict[str, float]
    estimated_total_usd: float
    counted: str


@route(
    bp,
    "/slipstream/dags/{dag_id}/dagRuns/{dag_run_id}/usage",
    "GET",
    role=Role.VIEWER,
    response=RunUsage,
    tag=TAG,
)
def get_run_usage(call: Call) -> RunUsage:
    """The AWS calls a run's workers made and what they cost at list prices.

    Each try's worker counts its calls from the claim to the end of its
    hand-off and writes them as its log's last line; this sums those lines.
    Scheduler messages and ticks are shared by many runs and not counted here.
    """
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    visible_run(call, dag_id, run_id)
    records = wiring.task_log_store().usage_records(dag_id, run_id, USAGE_EVENT)
    calls: dict[str, dict[str, int]] = {}
    seconds = 0.0
    for record in records:
        seconds += float(record.get("seconds") or 0.0)
        for service, operations in (record.get("calls") or {}).items():
            into = calls.setdefault(service, {})
            for operation, count in operations.items():
                into[operation] = into.get(operation, 0) + int(count)
    memory = int(os.environ.get("SLIPSTREAM_WORKER_MEMORY_MB", DEFAULT_WORKER_MEMORY_MB))
    cost = estimate(calls, worker_seconds=seconds, worker_memory_mb=memory)
    return RunUsage(
        dag_id=dag_id,
        dag_run_id=run_id,
        tries_metered=len(records),
        worker_seconds=round(seconds, 3),
        calls=calls,
        total_calls=sum(sum(ops.values()) for ops in calls.values()),
        estimated_cost_usd={k: round(v, 9) for k, v in cost.items()},
        estimated_total_usd=round(sum(cost.values()), 9),
        counted=(
            "calls each try's worker made from its claim to the end of its hand-off, "
            f"at us-east-1 on-demand list prices, worker time at {memory} MB; "
            "scheduler messages and ticks are not included"
        ),
    )


class DeadlineResponse(BaseModel):
    index: int
    name: str | None
    reference: str
    interval_seconds: float
    callback: str
    deadline_time: dt.datetime | None  # None until the scheduler has seen the run
    state: str  # pending, met or missed
    missed: bool
    missed_at: dt.datetime | None
    callback_sent: bool


class DeadlineCollection(BaseModel):
    dag_id: str
    dag_run_id: str
    deadlines: list[DeadlineResponse]
    total_entries: int


@route(
    bp,
    "/slipstream/dags/{dag_id}/dagRuns/{dag_run_id}/deadlines",
    "GET",
    role=Role.VIEWER,
    response=DeadlineCollection,
    tag=TAG,
)
def get_run_deadlines(call: Call) -> DeadlineCollection:
    """A run's deadline alerts (``DAG(deadline=...)``): when each falls and whether
    the run missed it. Airflow 3.1's REST API has no deadline resource, so this
    is Slipstream's own; the miss is also in the event log (``deadline_missed``)."""
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    _, stored = visible_run(call, dag_id, run_id)
    spec = deps.specs().get(dag_id, stored.run.version)
    found = {
        d.index: d
        for d in wiring.state_store().deadlines.for_run(dag_id, run_id, len(spec.deadlines))
    }
    rows = []
    for index, alert in enumerate(spec.deadlines):
        item = found.get(index)
        rows.append(
            DeadlineResponse(
                index=index,
                name=alert.name,
                reference=alert.reference.name,
                interval_seconds=alert.interval,
                callback=alert.callback,
                deadline_time=None if item is None else item.deadline_time,
                state="pending" if item is None else item.state.value,
                missed=item is not None and item.state.value == "missed",
                missed_at=None if item is None else item.missed_at,
                callback_sent=item is not None and item.callback_sent_at is not None,
            )
        )
    return DeadlineCollection(
        dag_id=dag_id, dag_run_id=run_id, deadlines=rows, total_entries=len(rows)
    )
