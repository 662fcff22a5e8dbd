"""``.../hitlDetails``: human-in-the-loop requests, and answering them
(Airflow 3's HITL API, the paths apache-airflow-client uses).

Reading needs the viewer role; answering needs the user role (who may trigger
and clear), and when the task names ``assigned_users`` only those users (by
key id or name) may answer. An answer is checked against the request (400
with what is wrong: unknown option, several options where one is asked,
unknown params) before anything is written; a second answer is refused (409);
an answer while the task's check is running is refused (409) to be sent
again. A stored answer has woken the task in the same transaction
(store/hitl.py); the timer message sent after it starts the next poke at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalice import Blueprint
from pydantic import Field

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import ApiModel, BodyModel, Paging
from chalicelib.api.datamodels.task_instances import TaskInstanceResponse
from chalicelib.api.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.api.routes.common import VersionLookup, summary_of, visible_dag, visible_run
from chalicelib.api.routes.task_instances import ti_response
from chalicelib.api.routing import Call, route
from chalicelib.core.hitl import (
    AlreadyResponded,
    HitlKey,
    HitlResponse,
    InvalidResponse,
    NotWaiting,
    check_response,
)
from chalicelib.core.messages import TimerFired
from chalicelib.core.runs import TaskInstance
from chalicelib.core.states import TaskState
from chalicelib.store.hitl import HitlRecord, HitlStore, hitl_store

bp = Blueprint(__name__)
TAG = "Task Instance"
ALL = "~"
RUN_PATH = "/dags/{dag_id}/dagRuns/{dag_run_id}"
ONE_PATH = RUN_PATH + "/taskInstances/{task_id}/{map_index}/hitlDetails"


class HITLUser(ApiModel):
    id: str
    name: str


class HITLDetail(ApiModel):
    task_instance: TaskInstanceResponse
    options: list[str] = Field(min_length=1)
    subject: str
    body: str | None = None
    defaults: list[str] | None = None
    multiple: bool = False
    params: dict[str, Any] = Field(default_factory=dict)
    assigned_users: list[HITLUser] = Field(default_factory=list)
    created_at: dt.datetime
    responded_by_user: HITLUser | None = None
    responded_at: dt.datetime | None = None
    chosen_options: list[str] | None = None
    params_input: dict[str, Any] = Field(default_factory=dict)
    response_received: bool = False


class HITLDetailCollection(ApiModel):
    hitl_details: list[HITLDetail]
    total_entries: int


class HITLDetailResponse(ApiModel):
    responded_by: HITLUser
    responded_at: dt.datetime
    chosen_options: list[str] = Field(min_length=1)
    params_input: dict[str, Any] = Field(default_factory=dict)


class UpdateHITLDetailPayload(BodyModel):
    chosen_options: list[str] = Field(min_length=1)
    params_input: dict[str, Any] = Field(default_factory=dict)


class HITLListQuery(Paging):
    task_id: str | None = None
    map_index: int | None = None
    response_received: bool | None = None
    state: list[str] = Field(default_factory=list)


def _store() -> HitlStore:
    return hitl_store(deps.catalog().store)


def _user(user: Any) -> HITLUser | None:
    if not user:
        return None
    return HITLUser(id=str(user.get("id", "")), name=str(user.get("name") or user.get("id", "")))


def _detail(record: HitlRecord, ti: TaskInstanceResponse) -> HITLDetail:
    request, response = record.request, record.response
    return HITLDetail(
        task_instance=ti,
        options=list(request.options),
        subject=request.subject,
        body=request.body,
        defaults=None if request.defaults is None else list(request.defaults),
        multiple=request.multiple,
        params=dict(request.params),
        assigned_users=[u for u in map(_user, request.assigned_users) if u is not None],
        created_at=request.created_at or dt.datetime.now(dt.UTC),
        responded_by_user=None if response is None else _user(response.responded_by),
        responded_at=None if response is None else response.responded_at,
        chosen_options=None if response is None else list(response.chosen_options),
        params_input={} if response is None else dict(response.params_input),
        response_received=response is not None,
    )


def _with_instances(call: Call, records: list[HitlRecord]) -> list[HITLDetail]:
    """Each record beside its task instance, reading each run once."""
    details: list[HITLDetail] = []
    by_run: dict[tuple[str, str], list[HitlRecord]] = {}
    for record in records:
        by_run.setdefault((record.key.dag_id, record.key.run_id), []).append(record)
    for (dag_id, run_id), group in by_run.items():
        try:
            dag, stored = visible_run(call, dag_id, run_id)
        except NotFound:
            continue  # the run was deleted; its request is gone with it
        spec = deps.specs().get(dag_id, stored.run.version)
        versions = VersionLookup(dag_id, summary_of(dag).get("display_name") or dag_id)
        keys = [(r.key.task_id, r.key.map_index) for r in group if r.key.task_id in spec.tasks]
        found = deps.catalog().instances(dag_id, run_id, keys)
        for record in group:
            if record.key.task_id not in spec.tasks:
                continue
            k = (record.key.task_id, record.key.map_index)
            ti = found.get(k) or TaskInstance(*k)
            details.append(_detail(record, ti_response(spec, stored.run, ti, versions)))
    return details


@route(
    bp,
    RUN_PATH + "/hitlDetails",
    "GET",
    role=Role.VIEWER,
    query=HITLListQuery,
    response=HITLDetailCollection,
    tag=TAG,
)
def get_hitl_details(call: Call) -> HITLDetailCollection:
    """List human-in-the-loop requests (``~`` for every DAG or run), oldest first."""
    return _list_details(call)


def _list_details(call: Call) -> HITLDetailCollection:
    query: HITLListQuery = call.query
    dag_id = None if call.path["dag_id"] == ALL else call.path["dag_id"]
    run_id = None if call.path["dag_run_id"] == ALL else call.path["dag_run_id"]
    if dag_id is None and run_id is not None:
        raise BadRequest("name the DAG to list one run's requests (dag_id `~` needs run `~`)")
    if dag_id is not None:
        visible_dag(call, dag_id)
    records = [
        r
        for r in _store().records(call.who.tenant, dag_id, run_id)
        if (query.task_id is None or r.key.task_id == query.task_id)
        and (query.map_index is None or r.key.map_index == query.map_index)
        and (query.response_received is None or (r.response is not None) == query.response_received)
    ]
    records.sort(key=lambda r: r.request.created_at or dt.datetime.min.replace(tzinfo=dt.UTC))
    details = _with_instances(call, records)
    if query.state:
        details = [d for d in details if (d.task_instance.state or "none") in query.state]
    page = details[query.offset : query.offset + query.limit]
    return HITLDetailCollection(hitl_details=page, total_entries=len(details))


def _key(call: Call) -> HitlKey:
    try:
        map_index = int(call.path["map_index"])
    except ValueError:
        raise BadRequest(
            f"map_index must be a whole number, got {call.path['map_index']!r}"
        ) from None
    return HitlKey(call.path["dag_id"], call.path["dag_run_id"], call.path["task_id"], map_index)


def _record(call: Call, key: HitlKey) -> HitlRecord:
    visible_run(call, key.dag_id, key.run_id)
    record = _store().get(call.who.tenant, key)
    if record is None:
        raise NotFound(
            f"No human-in-the-loop request for dag_id: `{key.dag_id}`, run_id: `{key.run_id}`, "
            f"task_id: `{key.task_id}` and map_index: `{key.map_index}`"
        )
    return record


@route(bp, ONE_PATH, "GET", role=Role.VIEWER, response=HITLDetail, tag=TAG)
def get_hitl_detail(call: Call) -> HITLDetail:
    """One task instance's human-in-the-loop request and its answer, if any."""
    return _one_detail(call)


def _one_detail(call: Call) -> HITLDetail:
    key = _key(call)
    details = _with_instances(call, [_record(call, key)])
    if not details:
        raise NotFound(f"Task {key.task_id!r} is not in DAG {key.dag_id!r}")
    return details[0]


def _may_answer(call: Call, record: HitlRecord) -> None:
    users = record.request.assigned_users
    if not users:
        return
    who = call.who
    allowed = {str(u.get("id")) for u in users} | {str(u.get("name")) for u in users}
    if who.key_id not in allowed and (who.name is None or who.name not in allowed):
        raise Forbidden("only the task's assigned_users may respond to this request")


@route(
    bp,
    ONE_PATH,
    "PATCH",
    role=Role.USER,
    body=UpdateHITLDetailPayload,
    response=HITLDetailResponse,
    tag=TAG,
)
def update_hitl_detail(call: Call) -> HITLDetailResponse:
    """Answer a waiting human-in-the-loop task; it resumes at once."""
    return _answer(call)


def _answer(call: Call) -> HITLDetailResponse:
    key = _key(call)
    body: UpdateHITLDetailPayload = call.body
    record = _record(call, key)
    _may_answer(call, record)
    store = _store()
    if record.response is not None:
        _wake(store, key, record.request.try_number)  # a retried PATCH: make sure it resumed
        raise Conflict(f"The request of {key.task_id} has been responded to already")
    try:
        params = check_response(record.request, body.chosen_options, body.params_input)
    except InvalidResponse as exc:
        raise BadRequest(str(exc)) from None
    who = call.who
    response = HitlResponse(
        chosen_options=tuple(body.chosen_options),
        params_input=params,
        responded_at=deps.now(),
        responded_by={"id": who.key_id, "name": who.name or who.key_id},
    )
    try:
        store.respond(who.tenant, key, record.request.try_number, response)
    except AlreadyResponded as exc:
        raise Conflict(str(exc)) from None
    except NotWaiting as exc:
        raise Conflict(str(exc)) from None
    _wake(store, key, record.request.try_number)
    return HITLDetailResponse(
        responded_by=HITLUser(id=who.key_id, name=who.name or who.key_id),
        responded_at=response.responded_at,
        chosen_options=list(response.chosen_options),
        params_input=params,
    )


def _wake(store: HitlStore, key: HitlKey, try_number: int) -> None:
    """The timer message that starts the waiting try's next poke now. Sent only
    while the instance waits at that try with its timer due; a duplicate finds
    the poke started and changes nothing (the engine's same-try condition)."""
    state, current_try, next_try = store.instance_state(key)
    now = deps.now()
    if state != TaskState.UP_FOR_RESCHEDULE.value or current_try != try_number:
        return
    if next_try is not None and next_try > now:
        return
    message = TimerFired(
        dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, map_index=key.map_index
    )
    deps.scheduler().timer(message, now, now)


# -- Airflow 3.1.0's paths for the same resources (the client since 3.1.x uses the ones above)


class HITLLegacyListQuery(HITLListQuery):
    dag_id: str | None = None
    dag_run_id: str | None = None


def _as(call: Call, **path: str) -> Call:
    return Call(call.principal, path, call.query, call.body, call.raw_body, call.headers)


@route(
    bp,
    "/hitlDetails",
    "GET",
    role=Role.VIEWER,
    query=HITLLegacyListQuery,
    response=HITLDetailCollection,
    tag=TAG,
)
def get_hitl_details_v310(call: Call) -> HITLDetailCollection:
    """List human-in-the-loop requests (Airflow 3.1.0's path; dag_id/dag_run_id filter)."""
    query: HITLLegacyListQuery = call.query
    return _list_details(_as(call, dag_id=query.dag_id or ALL, dag_run_id=query.dag_run_id or ALL))


LEGACY_ONE = "/hitlDetails/{dag_id}/{dag_run_id}/{task_id}"


@route(bp, LEGACY_ONE, "GET", role=Role.VIEWER, response=HITLDetail, tag=TAG)
def get_hitl_detail_v310(call: Call) -> HITLDetail:
    """One unmapped task instance's request (Airflow 3.1.0's path)."""
    return _one_detail(_as(call, **call.path, map_index="-1"))


@route(bp, LEGACY_ONE + "/{map_index}", "GET", role=Role.VIEWER, response=HITLDetail, tag=TAG)
def get_mapped_hitl_detail_v310(call: Call) -> HITLDetail:
    """One mapped task instance's request (Airflow 3.1.0's path)."""
    return _one_detail(call)


@route(
    bp,
    LEGACY_ONE,
    "PATCH",
    role=Role.USER,
    body=UpdateHITLDetailPayload,
    response=HITLDetailResponse,
    tag=TAG,
)
def update_hitl_detail_v310(call: Call) -> HITLDetailResponse:
    """Answer an unmapped waiting task (Airflow 3.1.0's path)."""
    return _answer(_as(call, **call.path, map_index="-1"))


@route(
    bp,
    LEGACY_ONE + "/{map_index}",
    "PATCH",
    role=Role.USER,
    body=UpdateHITLDetailPayload,
    response=HITLDetailResponse,
    tag=TAG,
)
def update_mapped_hitl_detail_v310(call: Call) -> HITLDetailResponse:
    """Answer a mapped waiting task (Airflow 3.1.0's path)."""
    return _answer(call)
