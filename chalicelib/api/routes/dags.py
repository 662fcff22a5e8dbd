"""``/dags``: list, get, details, pause (one or many), delete; tasks; versions."""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
from collections.abc import Collection
from typing import Any

from chalice import Blueprint

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import (
    DagVersionCollection,
    DagVersionResponse,
    TimeDelta,
)
from chalicelib.api.datamodels.dags import (
    DagBulkPatchQuery,
    DagCollection,
    DagDetailsResponse,
    DagListQuery,
    DagPatchBody,
    DagPatchQuery,
    DagResponse,
    DagTag,
    TaskCollection,
    TaskListQuery,
    TaskResponse,
    VersionListQuery,
)
from chalicelib.api.errors import BadRequest, Conflict, NotFound
from chalicelib.api.routes.common import (
    BUNDLE_NAME,
    current_spec,
    summary_of,
    version_response,
    visible_dag,
)
from chalicelib.api.routing import Call, route
from chalicelib.core.assets import airflow_expression
from chalicelib.core.spec import DagSpec, TaskSpec
from chalicelib.store.base import DagRecord
from chalicelib.store.catalog import Page
from chalicelib.store.import_errors import ImportErrors

bp = Blueprint(__name__)
TAG = "DAG"


def like(pattern: str, value: str) -> bool:
    """Airflow's ``*_pattern`` filters are SQL ``ILIKE %pattern%`` (``%`` and ``_`` wildcards)."""
    glob = pattern.lower().replace("*", "[*]").replace("?", "[?]")
    glob = glob.replace("%", "*").replace("_", "?")
    return fnmatch.fnmatchcase(value.lower(), f"*{glob}*")


def dag_response(record: DagRecord, broken: Collection[str] = ()) -> DagResponse:
    """``broken``: the files the tenant's last deploy refused (``has_import_errors``)."""
    fields = _dag_fields(record)
    return DagResponse(**fields, has_import_errors=fields["fileloc"] in broken)


def import_error_files(call: Call) -> set[str]:
    """The files the caller's tenant's last deploy refused: one read per list."""
    return ImportErrors(wiring.state_store().models.event_log).files(call.who.tenant)


def _dag_fields(record: DagRecord) -> dict[str, Any]:
    summary = summary_of(record)
    name = summary.get("display_name") or record.dag_id
    fileloc = summary.get("fileloc") or ""
    deployed = summary.get("deployed_at")
    return {
        "dag_id": record.dag_id,
        "dag_display_name": name,
        "is_paused": record.paused,
        "is_stale": not record.active,
        "last_parsed_time": dt.datetime.fromisoformat(deployed) if deployed else None,
        "bundle_name": BUNDLE_NAME,
        "bundle_version": summary.get("git_commit"),
        "relative_fileloc": fileloc,
        "fileloc": fileloc,
        "description": summary.get("description"),
        "timetable_summary": summary.get("timetable_summary"),
        "timetable_description": summary.get("timetable_description"),
        "timetable_periodic": bool(summary.get("timetable_periodic")),
        "tags": [
            DagTag(name=t, dag_id=record.dag_id, dag_display_name=name)
            for t in summary.get("tags", [])
        ],
        "max_active_tasks": int(summary.get("max_active_tasks", 16)),
        "max_active_runs": summary.get("max_active_runs"),
        "has_task_concurrency_limits": bool(summary.get("has_task_concurrency_limits")),
        "next_dagrun_run_after": record.next_due_at if not record.paused else None,
        "owners": list(summary.get("owners", ["airflow"])),
        "file_token": base64.urlsafe_b64encode(fileloc.encode()).decode(),
        "is_backfillable": bool(summary.get("timetable_periodic")),
    }


def _keeps(query: Any) -> Any:
    def keep(record: DagRecord) -> bool:
        summary = summary_of(record)
        if query.exclude_stale and not record.active:
            return False
        if query.paused is not None and record.paused != query.paused:
            return False
        if query.dag_id_pattern and not like(query.dag_id_pattern, record.dag_id):
            return False
        name_pattern = getattr(query, "dag_display_name_pattern", None)
        if name_pattern and not like(name_pattern, summary.get("display_name", record.dag_id)):
            return False
        if query.tags:
            tags = set(summary.get("tags", []))
            wanted = set(query.tags)
            if query.tags_match_mode == "all" and not wanted <= tags:
                return False
            if query.tags_match_mode == "any" and not wanted & tags:
                return False
        return not query.owners or bool(set(query.owners) & set(summary.get("owners", [])))

    return keep


@route(bp, "/dags", "GET", role=Role.VIEWER, query=DagListQuery, response=DagCollection, tag=TAG)
def get_dags(call: Call) -> DagCollection:
    """List DAGs of the caller's tenant."""
    page = listed_dags(call, call.query)
    broken = import_error_files(call)
    dags = [dag_response(r, broken) for r in page.items]
    return DagCollection(dags=dags, total_entries=page.total)


def listed_dags(call: Call, query: DagListQuery) -> Page:
    """The page of the caller's DAGs ``query`` asks for. Without a pattern, tag,
    owner or paused filter only the page is read (and the total is a COUNT):
    a filter needs each DAG's summary, so it reads the tenant's DAG rows."""
    if query.order_by.lstrip("-") not in ("dag_id", "dag_display_name"):
        raise BadRequest(f"Ordering with '{query.order_by}' is disallowed")
    filtered = bool(
        query.tags
        or query.owners
        or query.dag_id_pattern
        or query.dag_display_name_pattern
        or query.paused is not None
    )
    return deps.catalog().list_dags(
        call.who.tenant,
        limit=query.limit,
        offset=query.offset,
        keep=_keeps(query) if filtered else None,
        active_only=query.exclude_stale,
        descending=query.order_by.startswith("-"),
    )


@route(bp, "/dags/{dag_id}", "GET", role=Role.VIEWER, response=DagResponse, tag=TAG)
def get_dag(call: Call) -> DagResponse:
    """Get a DAG."""
    return dag_response(visible_dag(call, call.path["dag_id"]))


@route(bp, "/dags/{dag_id}/details", "GET", role=Role.VIEWER, response=DagDetailsResponse, tag=TAG)
def get_dag_details(call: Call) -> DagDetailsResponse:
    """Get a DAG with the details of its current version."""
    record = visible_dag(call, call.path["dag_id"])
    spec = current_spec(record)
    fields = _dag_fields(record)
    latest = deps.catalog().latest_version(record.dag_id)
    active = deps.catalog().store.active_runs(record.dag_id)
    return DagDetailsResponse(
        **fields,
        catchup=spec.catchup,
        is_paused_upon_creation=spec.is_paused_upon_creation,
        render_template_as_native_obj=spec.render_template_as_native_obj,
        dag_run_timeout=None if spec.dagrun_timeout is None else _duration(spec.dagrun_timeout),
        doc_md=spec.doc_md,
        start_date=spec.start_date,
        end_date=spec.end_date,
        params=_params(spec),
        timezone=spec.timezone,
        last_parsed=fields["last_parsed_time"],
        latest_dag_version=None
        if latest is None
        else version_response(latest, fields["dag_display_name"]),
        active_runs_count=len(active),
        concurrency=spec.max_active_tasks,
        asset_expression=airflow_expression(spec.asset_condition),
    )


def _duration(seconds: float) -> str:
    """A timedelta as Airflow's API prints it (``str(timedelta)``)."""
    return str(dt.timedelta(seconds=seconds))


def _params(spec: DagSpec | TaskSpec) -> dict[str, Any]:
    return {
        name: {
            "__class": "airflow.sdk.definitions.param.Param",
            "value": param.default if param.has_default else None,
            "description": param.description,
            "schema": dict(param.schema_),
        }
        for name, param in spec.params.items()
    }


def _patch(call: Call, record: DagRecord, paused: bool) -> DagRecord:
    updated = deps.catalog().set_paused(record.dag_id, paused)
    if updated is None:
        raise NotFound(f"The DAG with dag_id: `{record.dag_id}` was not found")
    deps.event_log().record(
        call.who.tenant,
        "pause" if paused else "unpause",
        owner=call.who.owner,
        when=deps.now(),
        dag_id=record.dag_id,
    )
    return updated


def _check_mask(mask: list[str]) -> None:
    unknown = [f for f in mask if f != "is_paused"]
    if unknown:
        raise BadRequest(f"Only `is_paused` field can be updated through the REST API; {unknown}")


@route(
    bp,
    "/dags/{dag_id}",
    "PATCH",
    role=Role.USER,
    query=DagPatchQuery,
    body=DagPatchBody,
    response=DagResponse,
    tag=TAG,
)
def patch_dag(call: Call) -> DagResponse:
    """Pause or unpause a DAG."""
    _check_mask(call.query.update_mask)
    record = visible_dag(call, call.path["dag_id"])
    return dag_response(_patch(call, record, call.body.is_paused))


@route(
    bp,
    "/dags",
    "PATCH",
    role=Role.USER,
    query=DagBulkPatchQuery,
    body=DagPatchBody,
    response=DagCollection,
    tag=TAG,
)
def patch_dags(call: Call) -> DagCollection:
    """Pause or unpause the DAGs a filter selects (Airflow requires ``dag_id_pattern``)."""
    query: DagBulkPatchQuery = call.query
    _check_mask(query.update_mask)
    if not query.dag_id_pattern:
        raise BadRequest("dag_id_pattern is required to patch many DAGs (use '%' for all)")
    page = deps.catalog().list_dags(
        call.who.tenant, limit=query.limit, offset=query.offset, keep=_keeps(query)
    )
    changed = [_patch(call, r, call.body.is_paused) for r in page.items]
    return DagCollection(dags=[dag_response(r) for r in changed], total_entries=len(changed))


@route(bp, "/dags/{dag_id}", "DELETE", role=Role.OP, status=204, tag=TAG)
def delete_dag(call: Call) -> None:
    """Delete a DAG: it is no longer listed or scheduled; its runs' history is kept."""
    record = visible_dag(call, call.path["dag_id"])
    if deps.catalog().store.active_runs(record.dag_id):
        raise Conflict(f"DAG {record.dag_id} has queued or running runs; let them finish first")
    if not deps.catalog().delete_dag(record.dag_id):
        raise NotFound(f"The DAG with dag_id: `{record.dag_id}` was not found")
    deps.event_log().record(
        call.who.tenant, "delete_dag", owner=call.who.owner, when=deps.now(), dag_id=record.dag_id
    )


# ----------------------------------------------------------------------- tasks


def task_response(spec: DagSpec, task: TaskSpec) -> TaskResponse:
    module, _, class_name = task.operator.rpartition(".")
    return TaskResponse(
        task_id=task.task_id,
        task_display_name=task.label,
        owner="airflow",
        trigger_rule=task.trigger_rule.value,
        retries=task.retries,
        depends_on_past=task.depends_on_past,
        wait_for_downstream=task.wait_for_downstream,
        queue=task.queue,
        pool=task.pool,
        pool_slots=task.pool_slots,
        execution_timeout=TimeDelta.of_seconds(task.execution_timeout),
        retry_delay=TimeDelta.of_seconds(task.retry_delay),
        retry_exponential_backoff=2.0 if task.retry_exponential_backoff else 0.0,
        priority_weight=task.priority_weight,
        weight_rule=task.weight_rule,
        template_fields=list(task.template_fields),
        downstream_task_ids=sorted(task.downstream),
        doc_md=task.doc_md,
        operator_name=class_name or task.operator,
        params=_params(task),
        class_ref={"module_path": module, "class_name": class_name},
        is_mapped=task.mapping is not None,
    )


@route(
    bp,
    "/dags/{dag_id}/tasks",
    "GET",
    role=Role.VIEWER,
    query=TaskListQuery,
    response=TaskCollection,
    tag="Task",
)
def get_tasks(call: Call) -> TaskCollection:
    """List the tasks of a DAG's current version."""
    spec = current_spec(visible_dag(call, call.path["dag_id"]))
    order = call.query.order_by
    field = order.lstrip("-")
    if field not in ("task_id", "task_display_name", "priority_weight", "retries", "pool"):
        raise BadRequest(f"Ordering with '{order}' is disallowed")
    tasks = [task_response(spec, t) for t in spec.tasks.values()]
    tasks.sort(key=lambda t: getattr(t, field), reverse=order.startswith("-"))
    return TaskCollection(tasks=tasks, total_entries=len(tasks))


@route(
    bp, "/dags/{dag_id}/tasks/{task_id}", "GET", role=Role.VIEWER, response=TaskResponse, tag="Task"
)
def get_task(call: Call) -> TaskResponse:
    """Get one task of a DAG's current version."""
    spec = current_spec(visible_dag(call, call.path["dag_id"]))
    task = spec.tasks.get(call.path["task_id"])
    if task is None:
        raise NotFound(f"Task with id {call.path['task_id']} not found")
    return task_response(spec, task)


# -------------------------------------------------------------------- versions


@route(
    bp,
    "/dags/{dag_id}/dagVersions",
    "GET",
    role=Role.VIEWER,
    query=VersionListQuery,
    response=DagVersionCollection,
    tag="DagVersion",
)
def get_dag_versions(call: Call) -> DagVersionCollection:
    """List a DAG's versions in deploy order."""
    record = visible_dag(call, call.path["dag_id"])
    query: VersionListQuery = call.query
    page = deps.catalog().versions(
        record.dag_id,
        limit=query.limit,
        offset=query.offset,
        descending=query.order_by.startswith("-"),
    )
    name = summary_of(record).get("display_name") or record.dag_id
    return DagVersionCollection(
        dag_versions=[version_response(r, name) for r in page.items], total_entries=page.total
    )


@route(
    bp,
    "/dags/{dag_id}/dagVersions/{version_number}",
    "GET",
    role=Role.VIEWER,
    response=DagVersionResponse,
    tag="DagVersion",
)
def get_dag_version(call: Call) -> DagVersionResponse:
    """Get one version of a DAG by its number."""
    record = visible_dag(call, call.path["dag_id"])
    text = call.path["version_number"]
    if not text.isdigit():
        raise BadRequest(f"version_number must be an integer, not {text!r}")
    row = deps.catalog().version_by_number(record.dag_id, int(text))
    if row is None:
        raise NotFound(
            f"The DagVersion with dag_id: `{record.dag_id}` "
            f"and version_number: `{text}` was not found"
        )
    return version_response(row, summary_of(record).get("display_name") or record.dag_id)
