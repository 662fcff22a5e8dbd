"""``/dags/{dag_id}/dagRuns``: trigger, get, list, annotate, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.dag_runs import (
    RUN_ORDER_FIELDS,
    DagRunCollection,
    DagRunListQuery,
    DagRunPatchBody,
    DagRunResponse,
    DagRunsBatchBody,
    TriggerBody,
    UpdateMaskQuery,
)
from chalicelib.api.errors import BadRequest, Conflict, NotFound
from chalicelib.api.routes.common import (
    VersionLookup,
    summary_of,
    visible_dag,
    visible_run,
)
from chalicelib.api.routes.dags import like
from chalicelib.api.routing import Call, route
from chalicelib.core.data_intervals import DataInterval
from chalicelib.core.runs import DagRun, RunType
from chalicelib.core.states import DagRunState
from chalicelib.scheduler.interventions import Interventions
from chalicelib.store.base import DagRecord
from chalicelib.store.catalog import StoredRun

bp = Blueprint(__name__)
TAG = "DagRun"
ALL = "~"

RUN_TYPE_NAMES = {
    RunType.SCHEDULED: "scheduled",
    RunType.MANUAL: "manual",
    RunType.BACKFILL: "backfill",
    # S3 and EventBridge events play the part of Airflow's asset events.
    RunType.EVENT: "asset_triggered",
    RunType.ASSET_TRIGGERED: "asset_triggered",
}
RUN_TYPES_BY_NAME: dict[str, set[RunType]] = {}
for _kind, _name in RUN_TYPE_NAMES.items():
    RUN_TYPES_BY_NAME.setdefault(_name, set()).add(_kind)
TRIGGERED_BY = {
    RunType.SCHEDULED: "timetable",
    RunType.BACKFILL: "backfill",
    RunType.EVENT: "asset",
    RunType.ASSET_TRIGGERED: "asset",
}


def run_response(run: DagRun, versions: VersionLookup) -> DagRunResponse:
    version = versions(run.version)
    duration = None
    if run.start_date is not None and run.end_date is not None:
        duration = (run.end_date - run.start_date).total_seconds()
    return DagRunResponse(
        dag_run_id=run.run_id,
        dag_id=run.dag_id,
        logical_date=run.logical_date,
        queued_at=None,
        start_date=run.start_date,
        end_date=run.end_date,
        duration=duration,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
        run_after=run.run_after,
        run_type=RUN_TYPE_NAMES[run.run_type],  # type: ignore[arg-type]
        state=run.state.value,  # type: ignore[arg-type]
        triggered_by=TRIGGERED_BY.get(run.run_type),
        conf=run.conf,
        note=run.note,
        dag_versions=[] if version is None else [version],
        bundle_version=None if version is None else version.bundle_version,
        dag_display_name=versions.display_name,
    )


def lookup_of(record: DagRecord) -> VersionLookup:
    """Version look-ups for one DAG's runs, named as the DAG is shown."""
    return VersionLookup(record.dag_id, summary_of(record).get("display_name") or record.dag_id)


@route(
    bp,
    "/dags/{dag_id}/dagRuns",
    "POST",
    role=Role.USER,
    body=TriggerBody,
    response=DagRunResponse,
    tag=TAG,
)
def trigger_dag_run(call: Call) -> DagRunResponse:
    """Trigger a DAG run, with conf checked against the DAG's params before anything is written."""
    dag_id = call.path["dag_id"]
    record = visible_dag(call, dag_id)
    body: TriggerBody = call.body
    interval = None
    if (body.data_interval_start is None) != (body.data_interval_end is None):
        raise BadRequest("data_interval_start and data_interval_end must be given together")
    if body.data_interval_start is not None and body.data_interval_end is not None:
        if body.data_interval_start > body.data_interval_end:
            raise BadRequest("data_interval_start must not be after data_interval_end")
        interval = DataInterval(
            body.data_interval_start.astimezone(dt.UTC), body.data_interval_end.astimezone(dt.UTC)
        )
    if not record.active:
        raise BadRequest(f"DAG {dag_id} is stale: it is not in the last deployed bundle")
    run, created = deps.scheduler().trigger(
        dag_id,
        conf=body.conf or {},
        logical_date=body.logical_date or body.run_after,
        run_id=body.dag_run_id,
        data_interval=interval,
        note=body.note,
    )
    if not created:
        raise Conflict(f"A DAG run with dag_id {dag_id!r} and run_id {run.run_id!r} exists already")
    deps.event_log().record(
        call.who.tenant,
        "trigger_dag_run",
        owner=call.who.owner,
        when=deps.now(),
        dag_id=dag_id,
        run_id=run.run_id,
        extra={"conf": body.conf or {}},
    )
    return run_response(run, lookup_of(record))


@route(
    bp,
    "/dags/{dag_id}/dagRuns/{dag_run_id}",
    "GET",
    role=Role.VIEWER,
    response=DagRunResponse,
    tag=TAG,
)
def get_dag_run(call: Call) -> DagRunResponse:
    """Get one DAG run."""
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    record, stored = visible_run(call, dag_id, run_id)
    return run_response(stored.run, lookup_of(record))


def _run_filter(query: DagRunListQuery) -> Any:
    """The filters ``by_dag``'s key cannot apply: they read the run's own fields."""
    checks: list[Any] = []
    if query.state:
        checks.append(lambda r: r.state.value in query.state)
    if query.run_type:
        kinds = {k for n in query.run_type for k in RUN_TYPES_BY_NAME.get(n, ())}
        checks.append(lambda r: r.run_type in kinds)
    if query.run_id_pattern:
        pattern = query.run_id_pattern
        checks.append(lambda r: like(pattern, r.run_id))
    ranges = [
        ("logical_date", query.logical_date_gte, query.logical_date_lte),
        ("start_date", query.start_date_gte, query.start_date_lte),
        ("end_date", query.end_date_gte, query.end_date_lte),
    ]
    for field, low, high in ranges:
        if low is not None or high is not None:
            checks.append(_within(field, low, high))
    if query.logical_date_gt is not None:
        after = query.logical_date_gt
        checks.append(lambda r: r.logical_date is not None and r.logical_date > after)
    if query.logical_date_lt is not None:
        before = query.logical_date_lt
        checks.append(lambda r: r.logical_date is not None and r.logical_date < before)
    if query.run_after_gt is not None:
        after_gt = query.run_after_gt
        checks.append(lambda r: r.run_after > after_gt)
    if query.run_after_lt is not None:
        after_lt = query.run_after_lt
        checks.append(lambda r: r.run_after < after_lt)
    if not checks:
        return None
    from chalicelib.store.dynamo_view import _run_from_item

    def keep(item: Any) -> bool:
        run = _run_from_item(item)
        return all(check(run) for check in checks)

    return keep


def _within(field: str, low: dt.datetime | None, high: dt.datetime | None) -> Any:
    def check(run: DagRun) -> bool:
        value = getattr(run, field)
        if value is None:
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    return check


@route(
    bp,
    "/dags/{dag_id}/dagRuns",
    "GET",
    role=Role.VIEWER,
    query=DagRunListQuery,
    response=DagRunCollection,
    tag=TAG,
)
def get_dag_runs(call: Call) -> DagRunCollection:
    """List the runs of one DAG, by run_after (Airflow's default order, creation)."""
    dag_id = call.path["dag_id"]
    query: DagRunListQuery = call.query
    field = query.order_by.lstrip("-")
    if field not in RUN_ORDER_FIELDS:
        raise BadRequest(f"Ordering with '{query.order_by}' is disallowed")
    if field not in ("id", "run_after", "logical_date", "dag_run_id", "run_id"):
        raise BadRequest(
            f"Ordering with '{query.order_by}' is not supported; order by id or run_after"
        )
    known = {} if dag_id == ALL else {dag_id: visible_dag(call, dag_id)}
    page = deps.catalog().list_runs(
        None if dag_id == ALL else dag_id,
        tenant=call.who.tenant,
        limit=query.limit,
        offset=query.offset,
        descending=query.order_by.startswith("-"),
        after_from=query.run_after_gte,
        after_to=query.run_after_lte,
        keep=_run_filter(query),
    )
    return DagRunCollection(dag_runs=runs_page(page.items, known), total_entries=page.total)


def runs_page(
    stored: list[StoredRun], known: dict[str, DagRecord] | None = None
) -> list[DagRunResponse]:
    """Responses for runs of any DAGs: one batch read of the DAG rows not known yet."""
    records = dict(known or {})
    missing = {s.run.dag_id for s in stored} - set(records)
    if missing:
        records.update(deps.catalog().dag_records(missing))
    lookups = {
        dag_id: VersionLookup(dag_id, summary_of(record).get("display_name") or dag_id)
        for dag_id, record in records.items()
    }
    return [
        run_response(s.run, lookups.get(s.run.dag_id) or VersionLookup(s.run.dag_id, s.run.dag_id))
        for s in stored
    ]


@route(
    bp,
    "/dags/{dag_id}/dagRuns/list",
    "POST",
    role=Role.VIEWER,
    body=DagRunsBatchBody,
    response=DagRunCollection,
    tag=TAG,
)
def get_list_dag_runs_batch(call: Call) -> DagRunCollection:
    """List runs of several DAGs at once (the path's dag_id must be ``~``)."""
    if call.path["dag_id"] != ALL:
        raise BadRequest("The dag_id in the path must be '~' for a batch list of runs")
    body: DagRunsBatchBody = call.body
    wanted = set(body.dag_ids or [])
    query = DagRunListQuery(
        limit=body.page_limit,
        offset=body.page_offset,
        order_by=body.order_by or "id",
        state=[s for s in body.states or [] if s is not None],
        logical_date_gte=body.logical_date_gte,
        logical_date_lte=body.logical_date_lte,
        start_date_gte=body.start_date_gte,
        start_date_lte=body.start_date_lte,
        end_date_gte=body.end_date_gte,
        end_date_lte=body.end_date_lte,
        run_after_gte=body.run_after_gte,
        run_after_lte=body.run_after_lte,
    )
    keep_run = _run_filter(query)

    def keep(item: Any) -> bool:
        return (not wanted or item.dag_id in wanted) and (keep_run is None or keep_run(item))

    page = deps.catalog().list_runs(
        None,
        tenant=call.who.tenant,
        limit=query.limit,
        offset=query.offset,
        descending=query.order_by.startswith("-"),
        after_from=query.run_after_gte,
        after_to=query.run_after_lte,
        keep=keep if (wanted or keep_run is not None) else None,
    )
    return DagRunCollection(dag_runs=runs_page(page.items), total_entries=page.total)


@route(
    bp,
    "/dags/{dag_id}/dagRuns/{dag_run_id}",
    "PATCH",
    role=Role.USER,
    query=UpdateMaskQuery,
    body=DagRunPatchBody,
    response=DagRunResponse,
    tag=TAG,
)
def patch_dag_run(call: Call) -> DagRunResponse:
    """Mark a run success or failed (its task instances with it), or change its note."""
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    record, stored = visible_run(call, dag_id, run_id)
    body: DagRunPatchBody = call.body
    mask = call.query.update_mask or [f for f in ("state", "note") if f in body.model_fields_set]
    unknown = [f for f in mask if f not in ("state", "note")]
    if unknown:
        raise BadRequest(f"Invalid field `{unknown[0]}` in update mask")
    if "state" in mask:
        if body.state not in ("success", "failed"):
            raise BadRequest(
                "A run can be marked success or failed; to run it again, clear it "
                "(POST .../dagRuns/{dag_run_id}/clear)"
            )
        spec = deps.specs().get(dag_id, stored.run.version)
        Interventions(deps.scheduler()).set_run_state(stored.run, spec, DagRunState(body.state))
        deps.event_log().record(
            call.who.tenant,
            f"mark_dag_run_{body.state}",
            owner=call.who.owner,
            when=deps.now(),
            dag_id=dag_id,
            run_id=run_id,
        )
    if "note" in mask:
        if not deps.catalog().set_run_note(dag_id, run_id, body.note):
            raise NotFound(f"The DagRun with run_id: `{run_id}` was not found")
        deps.event_log().record(
            call.who.tenant,
            "set_dag_run_note",
            owner=call.who.owner,
            when=deps.now(),
            dag_id=dag_id,
            run_id=run_id,
        )
    refreshed = deps.catalog().get_run(dag_id, run_id)
    return run_response((refreshed or stored).run, lookup_of(record))


@route(bp, "/dags/{dag_id}/dagRuns/{dag_run_id}", "DELETE", role=Role.USER, status=204, tag=TAG)
def delete_dag_run(call: Call) -> None:
    """Delete a finished run and its task instances."""
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    _, stored = visible_run(call, dag_id, run_id)
    if not stored.run.state.finished or not deps.catalog().delete_run(dag_id, run_id):
        raise Conflict(f"DAG run {run_id} is {stored.run.state.value}; only finished runs go")
    deps.event_log().record(
        call.who.tenant,
        "delete_dag_run",
        owner=call.who.owner,
        when=deps.now(),
        dag_id=dag_id,
        run_id=run_id,
    )
