"""``/pools``: slot pools, shared by every tenant of a deployment.

Pools are a deployment-wide resource, as Airflow's are: every tenant's tasks
draw on the pool their spec names, so every viewer may read them and an op
of any tenant may create, resize or delete one (a known limit of tenancy).
``default_pool`` always exists: until an op sizes it, it has unlimited slots
(``-1``, which Airflow also accepts).
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.admin import (
    PoolBody,
    PoolCollection,
    PoolPatchBody,
    PoolPatchQuery,
    PoolResponse,
)
from chalicelib.api.datamodels.common import Paging
from chalicelib.api.errors import BadRequest, Conflict, NotFound
from chalicelib.api.routing import Call, route
from chalicelib.core.spec import DEFAULT_POOL
from chalicelib.store import catalog as store_catalog
from chalicelib.store.catalog import PoolRow

bp = Blueprint(__name__)
TAG = "Pool"


def pool_response(row: PoolRow) -> PoolResponse:
    open_slots = -1 if row.slots < 0 else max(0, row.slots - row.used)
    return PoolResponse(
        name=row.name,
        slots=row.slots,
        description=row.description,
        occupied_slots=row.used,
        # A slot is taken when a try is queued and held until it ends; the two
        # are not counted apart, so all held slots show as running.
        running_slots=row.used,
        queued_slots=0,
        scheduled_slots=0,
        open_slots=open_slots,
    )


def _default_pool() -> PoolRow:
    used = deps.catalog().store.used(f"pool:{DEFAULT_POOL}")
    return PoolRow(DEFAULT_POOL, -1, used, "Default pool (unlimited until sized)")


def _find(name: str) -> PoolRow:
    row = deps.catalog().pool(name)
    if row is None and name == DEFAULT_POOL:
        return _default_pool()
    if row is None:
        raise NotFound(f"The Pool with name: `{name}` was not found")
    return row


@route(bp, "/pools", "GET", role=Role.VIEWER, query=Paging, response=PoolCollection, tag=TAG)
def get_pools(call: Call) -> PoolCollection:
    """List pools (``default_pool`` first while it is unsized)."""
    query: Paging = call.query
    catalog = deps.catalog()
    if catalog.pool(DEFAULT_POOL) is not None:
        page = catalog.pools(limit=query.limit, offset=query.offset)
        rows, total = list(page.items), page.total
    else:  # default_pool is the first entry, though not stored
        page = catalog.pools(limit=query.limit, offset=max(0, query.offset - 1))
        head = [_default_pool()] if query.offset == 0 else []
        rows, total = [*head, *page.items][: query.limit], page.total + 1
    return PoolCollection(pools=[pool_response(r) for r in rows], total_entries=total)


@route(bp, "/pools/{pool_name}", "GET", role=Role.VIEWER, response=PoolResponse, tag=TAG)
def get_pool(call: Call) -> PoolResponse:
    """Get one pool."""
    return pool_response(_find(call.path["pool_name"]))


def _log(call: Call, event: str, name: str, slots: int | None = None) -> None:
    deps.event_log().record(
        call.who.tenant,
        event,
        owner=call.who.owner,
        when=deps.now(),
        extra={"pool": name, "slots": slots},
    )


@route(
    bp, "/pools", "POST", role=Role.OP, body=PoolBody, response=PoolResponse, status=201, tag=TAG
)
def post_pool(call: Call) -> PoolResponse:
    """Create a pool."""
    body: PoolBody = call.body
    try:
        row = deps.catalog().put_pool(body.name, body.slots, body.description, create=True)
    except store_catalog.Conflict:
        raise Conflict(f"The Pool with name: `{body.name}` already exists") from None
    _log(call, "post_pool", body.name, body.slots)
    return pool_response(row)


@route(
    bp,
    "/pools/{pool_name}",
    "PATCH",
    role=Role.OP,
    query=PoolPatchQuery,
    body=PoolPatchBody,
    response=PoolResponse,
    tag=TAG,
)
def patch_pool(call: Call) -> PoolResponse:
    """Resize or describe a pool (creates ``default_pool`` the first time it is sized)."""
    name = call.path["pool_name"]
    body: PoolPatchBody = call.body
    mask = call.query.update_mask or sorted(body.model_fields_set)
    allowed = {"slots", "description", "include_deferred", "pool", "name"}
    unknown = [f for f in mask if f not in allowed]
    if unknown:
        raise BadRequest(f"Invalid field `{unknown[0]}` in update mask")
    if body.pool is not None and body.pool != name:
        raise BadRequest("Renaming a pool is not supported; create a new one")
    current = _find(name)
    slots = body.slots if "slots" in mask and body.slots is not None else current.slots
    description = body.description if "description" in mask else current.description
    exists = deps.catalog().pool(name) is not None
    try:
        row = deps.catalog().put_pool(name, slots, description, create=not exists)
    except (store_catalog.Conflict, store_catalog.Missing):
        raise Conflict(f"The Pool `{name}` changed meanwhile; try again") from None
    _log(call, "patch_pool", name, slots)
    return pool_response(row)


@route(bp, "/pools/{pool_name}", "DELETE", role=Role.OP, status=204, tag=TAG)
def delete_pool(call: Call) -> None:
    """Delete a pool (``default_pool`` cannot be deleted)."""
    name = call.path["pool_name"]
    if name == DEFAULT_POOL:
        raise BadRequest("Default Pool can't be deleted")
    if not deps.catalog().delete_pool(name):
        raise NotFound(f"The Pool with name: `{name}` was not found")
    _log(call, "delete_pool", name)
