"""``.../xcomEntries``: what a task instance pushed, read from the results table.

Values are not timestamped here; an entry's ``timestamp`` is when its try
ended (results are written as the try ends), or the run's ``run_after``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalice import Blueprint
from pydantic import BaseModel

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import Paging, QueryModel
from chalicelib.api.errors import NotFound
from chalicelib.api.routes.common import summary_of, visible_run
from chalicelib.api.routing import Call, route
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.spec import DagSpec

bp = Blueprint(__name__)
TAG = "XCom"
PATH = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries"


class XComEntry(BaseModel):
    key: str
    timestamp: dt.datetime
    logical_date: dt.datetime | None
    map_index: int
    task_id: str
    dag_id: str
    run_id: str
    dag_display_name: str
    task_display_name: str
    run_after: dt.datetime


class XComEntryWithValue(XComEntry):
    value: Any


class XComCollection(BaseModel):
    xcom_entries: list[XComEntry]
    total_entries: int


class XComListQuery(Paging):
    map_index: int | None = None
    xcom_key: str | None = None


class XComGetQuery(QueryModel):
    map_index: int = -1
    deserialize: bool = False
    stringify: bool = False


def _instances(call: Call) -> tuple[DagSpec, DagRun, str, dict[int, TaskInstance]]:
    dag_id, run_id, task_id = call.path["dag_id"], call.path["dag_run_id"], call.path["task_id"]
    record, stored = visible_run(call, dag_id, run_id)
    spec = deps.specs().get(dag_id, stored.run.version)
    if task_id not in spec.tasks:
        raise NotFound(f"Task {task_id!r} is not in DAG {dag_id!r}")
    keys = [k for k in deps.catalog().instance_keys(spec, stored) if k[0] == task_id]
    found = deps.catalog().instances(dag_id, run_id, keys)
    tis = {i: found.get((task_id, i)) or TaskInstance(task_id, i) for _, i in keys}
    return spec, stored.run, summary_of(record).get("display_name") or dag_id, tis


def _entry(spec: DagSpec, run: DagRun, name: str, ti: TaskInstance, key: str) -> dict[str, Any]:
    return {
        "key": key,
        "timestamp": ti.end_date or ti.start_date or run.run_after,
        "logical_date": run.logical_date,
        "map_index": ti.map_index,
        "task_id": ti.task_id,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "dag_display_name": name,
        "task_display_name": spec.tasks[ti.task_id].label,
        "run_after": run.run_after,
    }


@route(bp, PATH, "GET", role=Role.VIEWER, query=XComListQuery, response=XComCollection, tag=TAG)
def get_xcom_entries(call: Call) -> XComCollection:
    """List the keys a task's instances pushed (all map indices unless one is named)."""
    query: XComListQuery = call.query
    spec, run, name, tis = _instances(call)
    store = wiring.xcom_store(run.dag_id, run.run_id)
    entries: list[XComEntry] = []
    for index, ti in sorted(tis.items()):
        if query.map_index is not None and index != query.map_index:
            continue
        for key in store.keys(ti.task_id, index):
            if query.xcom_key is None or key == query.xcom_key:
                entries.append(XComEntry(**_entry(spec, run, name, ti, key)))
    page = entries[query.offset : query.offset + query.limit]
    return XComCollection(xcom_entries=page, total_entries=len(entries))


@route(
    bp,
    PATH + "/{xcom_key}",
    "GET",
    role=Role.VIEWER,
    query=XComGetQuery,
    response=XComEntryWithValue,
    tag=TAG,
)
def get_xcom_entry(call: Call) -> XComEntryWithValue:
    """One pushed value (``stringify=true`` for its text form)."""
    query: XComGetQuery = call.query
    spec, run, name, tis = _instances(call)
    key = call.path["xcom_key"]
    ti = tis.get(query.map_index)
    if ti is None:
        raise NotFound(f"Task {call.path['task_id']!r} has no map index {query.map_index}")
    found, value = wiring.xcom_store(run.dag_id, run.run_id).pull(ti.task_id, ti.map_index, key)
    if not found:
        raise NotFound(f"XCom entry with key: `{key}` not found")
    shown = str(value) if query.stringify else _jsonable(value)
    return XComEntryWithValue(**_entry(spec, run, name, ti, key), value=shown)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
