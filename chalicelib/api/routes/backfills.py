"""``/backfills``: create (and dry-run), list, get, pause, unpause, cancel.

The routes only check the caller and translate errors; the scheduler's
``Backfills`` plans the dates and creates the runs, so a backfill made here
runs exactly like one the scheduler advances later.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.backfills import (
    BackfillCollectionResponse,
    BackfillListQuery,
    BackfillPostBody,
    BackfillResponse,
    DryRunBackfillCollectionResponse,
    DryRunBackfillResponse,
    SkippedDate,
)
from chalicelib.api.errors import BadRequest, Conflict, NotFound, Unprocessable
from chalicelib.api.routes.common import visible_dag
from chalicelib.api.routing import Call, route
from chalicelib.core.backfill import (
    BackfillError,
    NonPeriodicSchedule,
    NoSchedule,
    ReprocessBehavior,
)
from chalicelib.scheduler.backfills import BackfillCompleted, BackfillNotFound
from chalicelib.store.backfills import ActiveBackfillExists, Backfill

bp = Blueprint(__name__)
TAG = "Backfill"


def backfill_response(backfill: Backfill) -> BackfillResponse:
    return BackfillResponse(
        id=backfill.id,
        dag_id=backfill.dag_id,
        from_date=backfill.from_date,
        to_date=backfill.to_date,
        dag_run_conf=backfill.dag_run_conf,
        is_paused=backfill.is_paused,
        reprocess_behavior=backfill.reprocess_behavior.value,
        max_active_runs=backfill.max_active_runs,
        created_at=backfill.created_at,
        completed_at=backfill.completed_at,
        updated_at=backfill.updated_at,
        dag_display_name=backfill.dag_display_name,
    )


def _check_dag(call: Call, body: BackfillPostBody) -> None:
    record = visible_dag(call, body.dag_id)
    if not record.current_version:
        raise NotFound(f"The DAG {body.dag_id} has no deployed version")


def _translated(exc: BackfillError) -> Exception:
    """Airflow's status codes: no schedule 409, other impossible backfills 422."""
    if isinstance(exc, NoSchedule):
        return Conflict(str(exc))
    if isinstance(exc, NonPeriodicSchedule):
        return Unprocessable(str(exc))
    return Unprocessable(str(exc))


@route(
    bp,
    "/backfills",
    "POST",
    role=Role.OP,
    body=BackfillPostBody,
    response=BackfillResponse,
    tag=TAG,
)
def create_backfill(call: Call) -> BackfillResponse:
    """Create a backfill: its first runs are created at once, the rest as they finish."""
    body: BackfillPostBody = call.body
    _check_dag(call, body)
    try:
        backfill = deps.scheduler().backfills.create(
            body.dag_id,
            body.from_date,
            body.to_date,
            conf=body.dag_run_conf,
            reprocess=ReprocessBehavior(body.reprocess_behavior),
            max_active_runs=body.max_active_runs,
            run_backwards=body.run_backwards,
        )
    except ActiveBackfillExists:
        raise Conflict(f"There is already a running backfill for dag {body.dag_id}") from None
    except BackfillError as exc:
        raise _translated(exc) from None
    deps.event_log().record(
        call.who.tenant,
        "create_backfill",
        owner=call.who.owner,
        when=deps.now(),
        dag_id=body.dag_id,
        extra={"backfill_id": backfill.id, "runs": len(backfill.dates)},
    )
    return backfill_response(backfill)


@route(
    bp,
    "/backfills/dry_run",
    "POST",
    role=Role.OP,
    body=BackfillPostBody,
    response=DryRunBackfillCollectionResponse,
    tag=TAG,
)
def create_backfill_dry_run(call: Call) -> DryRunBackfillCollectionResponse:
    """The logical dates a backfill would create runs for; writes nothing."""
    body: BackfillPostBody = call.body
    _check_dag(call, body)
    try:
        plan = deps.scheduler().backfills.plan(
            body.dag_id,
            body.from_date,
            body.to_date,
            reprocess=ReprocessBehavior(body.reprocess_behavior),
            run_backwards=body.run_backwards,
        )
    except BackfillError as exc:
        raise _translated(exc) from None
    return DryRunBackfillCollectionResponse(
        backfills=[DryRunBackfillResponse(logical_date=i.logical_date) for i in plan.runs],
        total_entries=len(plan.runs),
        skipped=[SkippedDate(logical_date=s.logical_date, reason=s.reason) for s in plan.skipped],
    )


@route(
    bp,
    "/backfills",
    "GET",
    role=Role.VIEWER,
    query=BackfillListQuery,
    response=BackfillCollectionResponse,
    tag=TAG,
)
def list_backfills(call: Call) -> BackfillCollectionResponse:
    """List one DAG's backfills by id (through the by_dag index)."""
    query: BackfillListQuery = call.query
    visible_dag(call, query.dag_id)
    order = query.order_by[0] if query.order_by else "id"
    if order.lstrip("-") != "id":
        raise BadRequest(f"Ordering with '{order}' is disallowed")
    page, total = deps.catalog().store.backfills.list_for_dag(
        query.dag_id, limit=query.limit, offset=query.offset, descending=order.startswith("-")
    )
    return BackfillCollectionResponse(
        backfills=[backfill_response(b) for b in page], total_entries=total
    )


def visible_backfill(call: Call, raw_id: str) -> Backfill:
    """The backfill if its DAG is the caller's tenant's; 404 otherwise."""
    missing = NotFound(f"Could not find backfill with id {raw_id}")
    if not raw_id.isdigit():
        raise missing
    backfill = deps.catalog().store.backfills.get(int(raw_id))
    if backfill is None:
        raise missing
    try:
        visible_dag(call, backfill.dag_id)
    except NotFound:
        raise missing from None
    return backfill


@route(
    bp,
    "/backfills/{backfill_id}",
    "GET",
    role=Role.VIEWER,
    response=BackfillResponse,
    tag=TAG,
)
def get_backfill(call: Call) -> BackfillResponse:
    """Get one backfill."""
    return backfill_response(visible_backfill(call, call.path["backfill_id"]))


def _change(call: Call, action: str) -> BackfillResponse:
    backfill = visible_backfill(call, call.path["backfill_id"])
    backfills = deps.scheduler().backfills
    try:
        changed = getattr(backfills, action)(backfill.id)
    except BackfillNotFound as exc:
        raise NotFound(str(exc)) from None
    except BackfillCompleted as exc:
        raise Conflict(str(exc)) from None
    deps.event_log().record(
        call.who.tenant,
        f"{action}_backfill",
        owner=call.who.owner,
        when=deps.now(),
        dag_id=backfill.dag_id,
        extra={"backfill_id": backfill.id},
    )
    return backfill_response(changed)


@route(
    bp,
    "/backfills/{backfill_id}/pause",
    "PUT",
    role=Role.OP,
    response=BackfillResponse,
    tag=TAG,
)
def pause_backfill(call: Call) -> BackfillResponse:
    """Pause a backfill: it starts and creates no runs until unpaused."""
    return _change(call, "pause")


@route(
    bp,
    "/backfills/{backfill_id}/unpause",
    "PUT",
    role=Role.OP,
    response=BackfillResponse,
    tag=TAG,
)
def unpause_backfill(call: Call) -> BackfillResponse:
    """Unpause a backfill: its held runs start and the next dates get runs."""
    return _change(call, "unpause")


@route(
    bp,
    "/backfills/{backfill_id}/cancel",
    "PUT",
    role=Role.OP,
    response=BackfillResponse,
    tag=TAG,
)
def cancel_backfill(call: Call) -> BackfillResponse:
    """Cancel a backfill: its queued runs fail, its running runs finish."""
    return _change(call, "cancel")
