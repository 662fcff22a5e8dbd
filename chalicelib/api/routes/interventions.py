"""Clear and mark: ``clearTaskInstances``, a run's ``clear``, and PATCH of task
instances (with their ``dry_run`` twins). The changes themselves are the
scheduler's (scheduler.interventions); this module picks the instances."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.interventions import (
    ClearTaskInstancesBody,
    DagRunClearBody,
    PatchTaskInstanceBody,
    PatchTaskInstanceQuery,
)
from chalicelib.api.datamodels.task_instances import TaskInstanceCollection
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.common import VersionLookup, summary_of, visible_run
from chalicelib.api.routes.dag_runs import run_response
from chalicelib.api.routes.task_instances import ti_response
from chalicelib.api.routing import Call, route
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.selection import related_tasks, tasks_to_clear
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.scheduler.interventions import Changed, Interventions, run_instances

bp = Blueprint(__name__)
TAG = "TaskInstance"
TI_PATH = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"


def _interventions() -> Interventions:
    return Interventions(deps.scheduler())


def _lookup(record_name: str, dag_id: str) -> VersionLookup:
    return VersionLookup(dag_id, record_name)


def _select(
    spec: DagSpec,
    instances: list[TaskInstance],
    refs: list[Any] | None,
    *,
    upstream: bool,
    downstream: bool,
    clearing: bool = False,
) -> list[TaskInstance]:
    """The instances named by ``refs`` (task ids, or [task_id, map_index] pairs),
    widened to their relatives (for a clear, also their setups and teardowns);
    all of the run's instances when ``refs`` is None."""
    if refs is None:
        return instances
    tasks: set[str] = set()
    exact: set[tuple[str, int]] = set()
    for ref in refs:
        if isinstance(ref, str):
            tasks.add(ref)
        else:
            exact.add((ref[0], int(ref[1])))
    named = tasks | {t for t, _ in exact}
    widen = tasks_to_clear if clearing else related_tasks
    try:
        related = widen(spec, named, upstream=upstream, downstream=downstream)
    except KeyError as exc:
        raise BadRequest(f"Task(s) not in the DAG: {exc.args[0]}") from None
    whole = (related - named) | tasks
    return [ti for ti in instances if ti.task_id in whole or ti.key in exact]


def _collection(
    spec: DagSpec, run: DagRun, instances: list[TaskInstance], lookup: VersionLookup
) -> TaskInstanceCollection:
    return TaskInstanceCollection(
        task_instances=[ti_response(spec, run, ti, lookup) for ti in instances],
        total_entries=len(instances),
    )


def _befores(changes: list[Changed]) -> list[TaskInstance]:
    return [c.before for c in changes]


def _log(call: Call, event: str, run: DagRun, extra: dict[str, Any]) -> None:
    deps.event_log().record(
        call.who.tenant,
        event,
        owner=call.who.owner,
        when=deps.now(),
        dag_id=run.dag_id,
        run_id=run.run_id,
        extra=extra,
    )


@route(
    bp,
    "/dags/{dag_id}/clearTaskInstances",
    "POST",
    role=Role.USER,
    body=ClearTaskInstancesBody,
    response=TaskInstanceCollection,
    tag=TAG,
)
def post_clear_task_instances(call: Call) -> TaskInstanceCollection:
    """Clear task instances of one run (a dry run unless ``dry_run`` is false)."""
    body: ClearTaskInstancesBody = call.body
    dag_id = call.path["dag_id"]
    if body.include_future or body.include_past:
        raise BadRequest("include_future and include_past are not supported; name one run")
    if body.dag_run_id is None:
        raise BadRequest("dag_run_id is required: Slipstream clears the instances of one run")
    if body.only_failed and body.only_running:
        raise BadRequest("only_failed and only_running cannot both be true")
    record, stored = visible_run(call, dag_id, body.dag_run_id)
    run = stored.run
    spec = deps.specs().get(dag_id, run.version)
    chosen = _select(
        spec,
        run_instances(deps.scheduler(), run, spec),
        body.task_ids,
        upstream=body.include_upstream,
        downstream=body.include_downstream,
        clearing=True,
    )
    if body.only_failed:
        chosen = [ti for ti in chosen if ti.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)]
    if body.only_running:
        chosen = [ti for ti in chosen if ti.state is TaskState.RUNNING]
    changes = _interventions().clear(run, spec, chosen, dry_run=body.dry_run)
    if not body.dry_run:
        _log(call, "clear", run, {"task_instances": [c.before.label for c in changes]})
    lookup = _lookup(summary_of(record).get("display_name") or dag_id, dag_id)
    return _collection(spec, run, _befores(changes), lookup)


@route(
    bp,
    "/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
    "POST",
    role=Role.USER,
    body=DagRunClearBody,
    response=None,
    tag="DagRun",
)
def clear_dag_run(call: Call) -> Any:
    """Clear a run: every instance, or only failed ones; a dry run lists them."""
    body: DagRunClearBody = call.body
    dag_id, run_id = call.path["dag_id"], call.path["dag_run_id"]
    record, stored = visible_run(call, dag_id, run_id)
    run = stored.run
    spec = deps.specs().get(dag_id, run.version)
    chosen = run_instances(deps.scheduler(), run, spec)
    if body.only_failed:
        chosen = [ti for ti in chosen if ti.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)]
    changes = _interventions().clear(run, spec, chosen, dry_run=body.dry_run)
    lookup = _lookup(summary_of(record).get("display_name") or dag_id, dag_id)
    if body.dry_run:
        return _collection(spec, run, _befores(changes), lookup)
    _log(call, "clear_dag_run", run, {"only_failed": body.only_failed})
    fresh = deps.catalog().get_run(dag_id, run_id)
    return run_response((fresh or stored).run, lookup)


def _patch(call: Call, map_index: int | None, *, dry_run: bool) -> TaskInstanceCollection:
    body: PatchTaskInstanceBody = call.body
    query: PatchTaskInstanceQuery = call.query
    dag_id, run_id, task_id = call.path["dag_id"], call.path["dag_run_id"], call.path["task_id"]
    mask = query.update_mask or [f for f in ("new_state", "note") if f in body.model_fields_set]
    unknown = [f for f in mask if f not in ("new_state", "note")]
    if unknown:
        raise BadRequest(f"Invalid field `{unknown[0]}` in update mask")
    if "note" in mask:
        raise BadRequest("Notes on task instances are not supported yet; notes on runs are")
    if body.new_state is None:
        raise BadRequest("new_state is required: one of success, failed, skipped")
    if body.include_future or body.include_past:
        raise BadRequest("include_future and include_past are not supported; name one run")
    record, stored = visible_run(call, dag_id, run_id)
    run = stored.run
    spec = deps.specs().get(dag_id, run.version)
    if task_id not in spec.tasks:
        raise NotFound(f"Task {task_id!r} is not in DAG {dag_id!r}")
    index = map_index if map_index is not None else query.map_index
    refs: list[Any] = [task_id] if index is None else [(task_id, index)]
    instances = run_instances(deps.scheduler(), run, spec)
    chosen = _select(
        spec, instances, refs, upstream=body.include_upstream, downstream=body.include_downstream
    )
    if index is not None and not any(ti.key == (task_id, index) for ti in chosen):
        raise NotFound(f"Task instance {task_id}[{index}] is not in run {run_id}")
    state = TaskState(body.new_state)
    changes = _interventions().mark(run, spec, chosen, state, dry_run=dry_run)
    lookup = _lookup(summary_of(record).get("display_name") or dag_id, dag_id)
    if dry_run:
        return _collection(spec, run, _befores(changes), lookup)
    _log(call, f"mark_{state.value}", run, {"task_instances": [c.before.label for c in changes]})
    after = [c.before.evolve(state=c.after) for c in changes]
    return _collection(spec, run, after, lookup)


def _index(call: Call) -> int:
    text = call.path["map_index"]
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"map_index must be an integer, not {text!r}") from None


_PATCH = {
    "role": Role.USER,
    "query": PatchTaskInstanceQuery,
    "body": PatchTaskInstanceBody,
    "response": TaskInstanceCollection,
    "tag": TAG,
}


@route(bp, TI_PATH, "PATCH", **_PATCH)  # type: ignore[arg-type]
def patch_task_instance(call: Call) -> TaskInstanceCollection:
    """Mark a task's instances success, failed or skipped (all map indices unless given)."""
    return _patch(call, None, dry_run=False)


@route(bp, TI_PATH + "/dry_run", "PATCH", **_PATCH)  # type: ignore[arg-type]
def patch_task_instance_dry_run(call: Call) -> TaskInstanceCollection:
    """The instances a mark would change, changing nothing."""
    return _patch(call, None, dry_run=True)


@route(bp, TI_PATH + "/{map_index}", "PATCH", **_PATCH)  # type: ignore[arg-type]
def patch_task_instance_by_map_index(call: Call) -> TaskInstanceCollection:
    """Mark one mapped instance success, failed or skipped."""
    return _patch(call, _index(call), dry_run=False)


@route(bp, TI_PATH + "/{map_index}/dry_run", "PATCH", **_PATCH)  # type: ignore[arg-type]
def patch_task_instance_dry_run_by_map_index(call: Call) -> TaskInstanceCollection:
    """The mapped instance a mark would change, changing nothing."""
    return _patch(call, _index(call), dry_run=True)
