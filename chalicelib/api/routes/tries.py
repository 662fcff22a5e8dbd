"""``.../tries``: a task instance's tries.

Only the latest try of an instance is stored (its record is overwritten by the
next try), so earlier tries are listed by number with what is known of them:
nothing but that they ran and ended. Their logs stay readable by try number.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.task_instances import TryCollection, TryResponse
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.common import VersionLookup, summary_of, visible_run
from chalicelib.api.routes.task_instances import ti_response
from chalicelib.api.routing import Call, route
from chalicelib.core.runs import TaskInstance

bp = Blueprint(__name__)
TAG = "TaskInstance"
BASE = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}"


def _tries(call: Call, map_index: int) -> list[TryResponse]:
    dag_id, run_id, task_id = call.path["dag_id"], call.path["dag_run_id"], call.path["task_id"]
    record, stored = visible_run(call, dag_id, run_id)
    spec = deps.specs().get(dag_id, stored.run.version)
    if task_id not in spec.tasks:
        raise NotFound(f"Task {task_id!r} is not in DAG {dag_id!r}")
    found = deps.catalog().instances(dag_id, run_id, [(task_id, map_index)])
    ti = found.get((task_id, map_index)) or TaskInstance(task_id, map_index)
    if ti.try_number < 1:
        return []  # never tried
    lookup = VersionLookup(dag_id, summary_of(record).get("display_name") or dag_id)
    fields = set(TryResponse.model_fields)
    shown = ti_response(spec, stored.run, ti, lookup).model_dump()
    latest = {k: v for k, v in shown.items() if k in fields}  # the instance is its latest try
    unknown = {"state": None, "start_date": None, "end_date": None, "duration": None}
    earlier = [
        TryResponse(**{**latest, **unknown, "queued_when": None, "try_number": number})
        for number in range(1, ti.try_number)
    ]
    return [*earlier, TryResponse(**latest)]


def _one(call: Call, map_index: int) -> TryResponse:
    text = call.path["task_try_number"]
    if not text.isdigit():
        raise BadRequest(f"task_try_number must be a positive integer, not {text!r}")
    for tried in _tries(call, map_index):
        if tried.try_number == int(text):
            return tried
    raise NotFound(f"The Task Instance has no try {text}")


def _index(call: Call) -> int:
    try:
        return int(call.path["map_index"])
    except ValueError:
        raise BadRequest(f"map_index must be an integer, not {call.path['map_index']!r}") from None


@route(bp, BASE + "/tries", "GET", role=Role.VIEWER, response=TryCollection, tag=TAG)
def get_task_instance_tries(call: Call) -> TryCollection:
    """List the tries of an unmapped task's instance."""
    tries = _tries(call, -1)
    return TryCollection(task_instances=tries, total_entries=len(tries))


@route(bp, BASE + "/{map_index}/tries", "GET", role=Role.VIEWER, response=TryCollection, tag=TAG)
def get_mapped_task_instance_tries(call: Call) -> TryCollection:
    """List the tries of one mapped instance."""
    tries = _tries(call, _index(call))
    return TryCollection(task_instances=tries, total_entries=len(tries))


@route(
    bp, BASE + "/tries/{task_try_number}", "GET", role=Role.VIEWER, response=TryResponse, tag=TAG
)
def get_task_instance_try_details(call: Call) -> TryResponse:
    """One try of an unmapped task's instance."""
    return _one(call, -1)


@route(
    bp,
    BASE + "/{map_index}/tries/{task_try_number}",
    "GET",
    role=Role.VIEWER,
    response=TryResponse,
    tag=TAG,
)
def get_mapped_task_instance_try_details(call: Call) -> TryResponse:
    """One try of one mapped instance."""
    return _one(call, _index(call))
