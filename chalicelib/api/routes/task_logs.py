"""``.../taskInstances/{task_id}/logs/{try_number}``: one try's log, paged.

Lines come from the try's CloudWatch Logs stream as Airflow 3's structured
lines (``timestamp``, ``event``, ``level``, ``logger``). ``continuation_token``
reads the next page; while the try runs, the last token is handed back even
when nothing new has arrived, so a client following the try polls with it.
It is null once a finished try's log has been read to its end.
"""

from __future__ import annotations

from typing import Annotated, Any

from chalice import Blueprint, Response
from pydantic import BaseModel, Field

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import QueryModel
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.common import visible_run
from chalicelib.api.routing import Call, route
from chalicelib.core.runs import TaskInstance
from chalicelib.core.states import TaskState

bp = Blueprint(__name__)
TAG = "TaskInstance"
PAGE_LINES = 1000
WRITING = (TaskState.QUEUED, TaskState.RUNNING)
"""States in which the try may still add lines to its log."""


class LogQuery(QueryModel):
    map_index: int = -1
    token: str | None = None
    full_content: bool = False
    limit: Annotated[int, Field(ge=1, le=10_000)] = PAGE_LINES


class LogResponse(BaseModel):
    content: list[dict[str, Any]]
    continuation_token: str | None


@route(
    bp,
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
    "GET",
    role=Role.VIEWER,
    query=LogQuery,
    response=LogResponse,
    tag=TAG,
)
def get_log(call: Call) -> Any:
    """One page of a try's log (``Accept: text/plain`` for plain text)."""
    dag_id, run_id, task_id = call.path["dag_id"], call.path["dag_run_id"], call.path["task_id"]
    text = call.path["try_number"]
    if not text.isdigit():
        raise BadRequest(f"try_number must be a positive integer, not {text!r}")
    try_number = int(text)
    query: LogQuery = call.query
    _, stored = visible_run(call, dag_id, run_id)
    spec = deps.specs().get(dag_id, stored.run.version)
    if task_id not in spec.tasks:
        raise NotFound(f"Task {task_id!r} is not in DAG {dag_id!r}")
    found = deps.catalog().instances(dag_id, run_id, [(task_id, query.map_index)])
    ti = found.get((task_id, query.map_index)) or TaskInstance(task_id, query.map_index)
    if try_number < 1 or try_number > max(ti.try_number, 1):
        raise NotFound(
            f"Task instance {ti.label} has no try {try_number} (it is at try {ti.try_number})"
        )
    lines: list[dict[str, Any]] = []
    token = query.token
    while True:
        page, next_token = wiring.read_try_log(
            dag_id, run_id, task_id, query.map_index, try_number, token=token, limit=query.limit
        )
        lines.extend(page)
        if next_token is not None:
            token = next_token
        if not query.full_content or next_token is None:
            break
    still_writing = ti.try_number == try_number and ti.state in WRITING
    more = next_token is not None or still_writing
    continuation = token if more else None
    if "text/plain" in call.headers.get("accept", ""):
        body = "\n".join(str(line.get("event", "")) for line in lines)
        headers = {"Content-Type": "text/plain"}
        if continuation:
            headers["Airflow-Continuation-Token"] = continuation
        return Response(body=body, status_code=200, headers=headers)
    return LogResponse(content=lines, continuation_token=continuation)
