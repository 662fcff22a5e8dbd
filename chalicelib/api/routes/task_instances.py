"""``.../taskInstances``: a run's instances, one instance, a mapped task's instances.

A run's instances are known without reading them: the spec names its tasks
and the run item counts each mapped task's instances. A page is those keys,
sorted, sliced, and read in one batch; instances with no record yet are in
Airflow's null state ("no status").
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import stable_uuid
from chalicelib.api.datamodels.task_instances import (
    NO_STATUS,
    TaskInstanceCollection,
    TaskInstanceListQuery,
    TaskInstanceResponse,
)
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.common import VersionLookup, summary_of, visible_dag, visible_run
from chalicelib.api.routing import Call, route
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.runtime.rendered_fields import rendered_fields_of
from chalicelib.store.catalog import StoredRun

bp = Blueprint(__name__)
TAG = "TaskInstance"
RUN_PATH = "/dags/{dag_id}/dagRuns/{dag_run_id}"
ALL = "~"


def ti_response(
    spec: DagSpec, run: DagRun, ti: TaskInstance, versions: VersionLookup
) -> TaskInstanceResponse:
    task = spec.tasks[ti.task_id]
    duration = None
    if ti.start_date is not None and ti.end_date is not None:
        duration = (ti.end_date - ti.start_date).total_seconds()
    operator = task.operator.rpartition(".")[2] or task.operator
    return TaskInstanceResponse(
        id=stable_uuid("task_instance", run.dag_id, run.run_id, ti.task_id, ti.map_index),
        task_id=ti.task_id,
        dag_id=run.dag_id,
        dag_run_id=run.run_id,
        map_index=ti.map_index,
        rendered_map_index=ti.rendered_map_index,
        rendered_fields=rendered_fields_of(ti.rendered_fields),
        logical_date=run.logical_date,
        run_after=run.run_after,
        start_date=ti.start_date,
        end_date=ti.end_date,
        duration=duration,
        state=None if ti.state is TaskState.NONE else ti.state.value,  # type: ignore[arg-type]
        try_number=ti.try_number,
        max_tries=task.retries,
        task_display_name=task.label,
        dag_display_name=versions.display_name,
        pool=task.pool,
        pool_slots=task.pool_slots,
        priority_weight=task.priority_weight,
        operator=operator,
        operator_name=operator,
        queued_when=ti.queued_at,
        executor=task.executor.kind,
        hostname=ti.external_executor_id,  # where it runs: the ECS task ARN (porting.md)
        dag_version=versions(run.version),
    )


def _context(call: Call) -> tuple[DagSpec, StoredRun, VersionLookup]:
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    record, stored = visible_run(call, dag_id, run_id)
    spec = deps.specs().get(dag_id, stored.run.version)
    name = summary_of(record).get("display_name") or dag_id
    return spec, stored, VersionLookup(dag_id, name)


def _states(names: list[str]) -> set[TaskState]:
    wanted: set[TaskState] = set()
    for name in names:
        if name in (NO_STATUS, "none", ""):
            wanted.add(TaskState.NONE)
            continue
        try:
            wanted.add(TaskState(name))
        except ValueError:
            raise BadRequest(f"Invalid value for state. Valid values are {_valid()}") from None
    return wanted


def _valid() -> str:
    return ", ".join([*(s.value for s in TaskState if s is not TaskState.NONE), NO_STATUS])


@route(
    bp,
    RUN_PATH + "/taskInstances",
    "GET",
    role=Role.VIEWER,
    query=TaskInstanceListQuery,
    response=TaskInstanceCollection,
    tag=TAG,
)
def get_task_instances(call: Call) -> TaskInstanceCollection:
    """List the task instances of one run, by task id and map index."""
    query: TaskInstanceListQuery = call.query
    if call.path["dag_run_id"] == ALL:
        return _across_runs(call, query)
    if call.path["dag_id"] == ALL:
        raise BadRequest("dag_id '~' needs dag_run_id '~' too: a run belongs to one DAG")
    spec, stored, versions = _context(call)
    catalog = deps.catalog()
    keys = catalog.instance_keys(spec, stored)
    if query.task_id is not None:
        keys = [k for k in keys if k[0] == query.task_id]
    if query.map_index:
        indices = set(query.map_index)
        keys = [k for k in keys if k[1] in indices]
    run = stored.run
    if query.state:
        wanted = _states(query.state)
        stored_tis = catalog.all_instances(run.dag_id, run.run_id)
        everything = [stored_tis.get(k) or TaskInstance(k[0], k[1]) for k in keys]
        chosen = [ti for ti in everything if ti.state in wanted]
        page = chosen[query.offset : query.offset + query.limit]
        total = len(chosen)
    else:
        page_keys = keys[query.offset : query.offset + query.limit]
        found = catalog.instances(run.dag_id, run.run_id, page_keys)
        page = [found.get(k) or TaskInstance(k[0], k[1]) for k in page_keys]
        total = len(keys)
    return TaskInstanceCollection(
        task_instances=[ti_response(spec, run, ti, versions) for ti in page],
        total_entries=total,
    )


def _across_runs(call: Call, query: TaskInstanceListQuery) -> TaskInstanceCollection:
    """Instances of many runs, newest run first, reading runs only until the page
    is full: the cost follows offset + limit, not history. The total is not
    counted (Airflow's schema allows null), since counting would read every run."""
    dag_id = None if call.path["dag_id"] == ALL else call.path["dag_id"]
    names: dict[str, str] = {}
    if dag_id is not None:
        names[dag_id] = summary_of(visible_dag(call, dag_id)).get("display_name") or dag_id
    wanted = _states(query.state) if query.state else None
    indices = set(query.map_index)
    catalog = deps.catalog()
    skipped = 0
    page: list[TaskInstanceResponse] = []
    for stored in catalog.stream_runs(dag_id, tenant=call.who.tenant):
        run = stored.run
        spec = deps.specs().get(run.dag_id, run.version)
        keys = [
            k
            for k in catalog.instance_keys(spec, stored)
            if (query.task_id is None or k[0] == query.task_id) and (not indices or k[1] in indices)
        ]
        if wanted is None and skipped + len(keys) <= query.offset:
            skipped += len(keys)  # a whole run before the page: nothing to read
            continue
        found = catalog.instances(run.dag_id, run.run_id, keys)
        if run.dag_id not in names:
            record = catalog.store.get_dag(run.dag_id)
            names[run.dag_id] = (summary_of(record) if record else {}).get(
                "display_name"
            ) or run.dag_id
        versions = VersionLookup(run.dag_id, names[run.dag_id])
        for key in keys:
            ti = found.get(key) or TaskInstance(key[0], key[1])
            if wanted is not None and ti.state not in wanted:
                continue
            if skipped < query.offset:
                skipped += 1
                continue
            page.append(ti_response(spec, run, ti, versions))
            if len(page) >= query.limit:
                return TaskInstanceCollection(task_instances=page, total_entries=None)
    return TaskInstanceCollection(task_instances=page, total_entries=None)


def _one(call: Call, map_index: int) -> TaskInstanceResponse:
    spec, stored, versions = _context(call)
    task_id = call.path["task_id"]
    run = stored.run
    if task_id not in spec.tasks:
        raise NotFound(f"Task {task_id!r} is not in DAG {run.dag_id!r}")
    keys = [k for k in deps.catalog().instance_keys(spec, stored) if k[0] == task_id]
    if (task_id, map_index) not in keys:
        hint = ""
        if map_index < 0 and len(keys) > 0 and keys[0][1] >= 0:
            hint = f"; it is mapped into {len(keys)} instances: ask for one by its map index"
        raise NotFound(
            f"The Task Instance with dag_id: `{run.dag_id}`, run_id: `{run.run_id}`, "
            f"task_id: `{task_id}` and map_index: `{map_index}` was not found{hint}"
        )
    found = deps.catalog().instances(run.dag_id, run.run_id, [(task_id, map_index)])
    ti = found.get((task_id, map_index)) or TaskInstance(task_id, map_index)
    return ti_response(spec, run, ti, versions)


@route(
    bp,
    RUN_PATH + "/taskInstances/{task_id}",
    "GET",
    role=Role.VIEWER,
    response=TaskInstanceResponse,
    tag=TAG,
)
def get_task_instance(call: Call) -> TaskInstanceResponse:
    """Get the task instance of an unmapped task."""
    return _one(call, -1)


@route(
    bp,
    RUN_PATH + "/taskInstances/{task_id}/{map_index}",
    "GET",
    role=Role.VIEWER,
    response=TaskInstanceResponse,
    tag=TAG,
)
def get_mapped_task_instance(call: Call) -> TaskInstanceResponse:
    """Get one mapped instance of a task by its map index."""
    text = call.path["map_index"]
    try:
        index = int(text)
    except ValueError:
        raise BadRequest(f"map_index must be an integer, not {text!r}") from None
    return _one(call, index)


@route(
    bp,
    RUN_PATH + "/taskInstances/{task_id}/listMapped",
    "GET",
    role=Role.VIEWER,
    query=TaskInstanceListQuery,
    response=TaskInstanceCollection,
    tag=TAG,
)
def get_mapped_task_instances(call: Call) -> TaskInstanceCollection:
    """List the mapped instances of one task, by map index."""
    query: TaskInstanceListQuery = call.query
    spec, stored, versions = _context(call)
    task_id = call.path["task_id"]
    task = spec.tasks.get(task_id)
    if task is None or task.mapping is None:
        raise NotFound(f"Task id {task_id} is not mapped")
    run = stored.run
    keys = [k for k in deps.catalog().instance_keys(spec, stored) if k[0] == task_id]
    keys = [k for k in keys if k[1] >= 0]
    if query.state:
        wanted = _states(query.state)
        stored_tis = deps.catalog().all_instances(run.dag_id, run.run_id)
        chosen = [stored_tis.get(k) or TaskInstance(k[0], k[1]) for k in keys]
        chosen = [ti for ti in chosen if ti.state in wanted]
        return TaskInstanceCollection(
            task_instances=[
                ti_response(spec, run, ti, versions)
                for ti in chosen[query.offset : query.offset + query.limit]
            ],
            total_entries=len(chosen),
        )
    page_keys = keys[query.offset : query.offset + query.limit]
    found = deps.catalog().instances(run.dag_id, run.run_id, page_keys)
    return TaskInstanceCollection(
        task_instances=[
            ti_response(spec, run, found.get(k) or TaskInstance(k[0], k[1]), versions)
            for k in page_keys
        ],
        total_entries=len(keys),
    )
