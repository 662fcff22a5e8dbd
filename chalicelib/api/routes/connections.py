"""``/connections``: a tenant's connections in Secrets Manager (op and admin only)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.secrets import (
    ConnectionBody,
    ConnectionCollection,
    ConnectionResponse,
    SecretListQuery,
    UpdateMask,
)
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.secrets_common import offset_page, store_errors
from chalicelib.api.routing import Call, route
from chalicelib.secrets.connection import Connection, restore_redacted_extra
from chalicelib.secrets.secret_masker import REDACTED

bp = Blueprint(__name__)
TAG = "Connection"
FIELDS = ("conn_type", "description", "host", "login", "schema", "port", "password", "extra")


def connection_response(conn: Connection) -> ConnectionResponse:
    shown = conn.public_dict()
    return ConnectionResponse(
        connection_id=conn.conn_id,
        conn_type=conn.conn_type or "",
        description=shown.get("description"),
        host=shown.get("host"),
        login=shown.get("login"),
        schema=shown.get("schema"),
        port=shown.get("port"),
        # As Airflow's answer: a set password is "***", so a reader knows one exists.
        password=REDACTED if shown.get("password_set") else None,
        extra=shown.get("extra"),
    )


def _log(call: Call, event: str, conn_id: str) -> None:
    deps.event_log().record(
        call.who.tenant, event, owner=call.who.owner, when=deps.now(), extra={"conn_id": conn_id}
    )


@route(
    bp,
    "/connections",
    "GET",
    role=Role.OP,
    query=SecretListQuery,
    response=ConnectionCollection,
    tag=TAG,
)
def get_connections(call: Call) -> ConnectionCollection:
    """List the tenant's connections, by id."""
    store = wiring.connection_store()
    tenant = call.who.tenant
    with store_errors():
        page, total = offset_page(
            lambda token: store.list(tenant, limit=50, next_token=token),
            call.query.offset,
            call.query.limit,
        )
    page.sort(key=lambda c: c.conn_id, reverse=call.query.order_by.startswith("-"))
    return ConnectionCollection(
        connections=[connection_response(c) for c in page], total_entries=total
    )


@route(
    bp,
    "/connections/{connection_id}",
    "GET",
    role=Role.OP,
    response=ConnectionResponse,
    tag=TAG,
)
def get_connection(call: Call) -> ConnectionResponse:
    """Get one connection (its password is never returned)."""
    conn_id = call.path["connection_id"]
    with store_errors():
        conn = wiring.connection_store().get(call.who.tenant, conn_id)
    if conn is None:
        raise NotFound(f"The Connection with connection_id: `{conn_id}` was not found")
    return connection_response(conn)


def _connection(body: ConnectionBody) -> Connection:
    return Connection(
        conn_id=body.connection_id,
        conn_type=body.conn_type,
        description=body.description,
        host=body.host,
        login=body.login,
        schema=body.schema_,
        port=body.port,
        password=body.password,
        extra=body.extra,
    )


@route(
    bp,
    "/connections",
    "POST",
    role=Role.OP,
    body=ConnectionBody,
    response=ConnectionResponse,
    status=201,
    tag=TAG,
)
def post_connection(call: Call) -> ConnectionResponse:
    """Create a connection."""
    conn = _connection(call.body)
    with store_errors():
        wiring.connection_store().put(call.who.tenant, conn, create_only=True)
    _log(call, "post_connection", conn.conn_id)
    return connection_response(conn)


@route(
    bp,
    "/connections/{connection_id}",
    "PATCH",
    role=Role.OP,
    query=UpdateMask,
    body=ConnectionBody,
    response=ConnectionResponse,
    tag=TAG,
)
def patch_connection(call: Call) -> ConnectionResponse:
    """Change a connection's fields (all of them, or those in ``update_mask``)."""
    conn_id = call.path["connection_id"]
    body: ConnectionBody = call.body
    if body.connection_id != conn_id:
        raise BadRequest("The connection_id in the body must match the one in the path")
    store = wiring.connection_store()
    with store_errors():
        current = store.get(call.who.tenant, conn_id)
        if current is None:
            raise NotFound(f"The Connection with connection_id: `{conn_id}` was not found")
        mask = call.query.update_mask or list(FIELDS)
        unknown = [f for f in mask if f not in FIELDS]
        if unknown:
            raise BadRequest(f"Invalid field `{unknown[0]}` in update mask")
        wanted = _connection(body)
        attribute = {f: "schema_" if f == "schema" else f for f in mask}
        changes = {attribute[f]: getattr(wanted, attribute[f]) for f in mask}
        if (
            changes.get("password") in (None, REDACTED)
            and "password" in changes
            and current.password
        ):
            del changes["password"]  # a round-tripped answer ("***" or none): keep the stored one
        if "extra" in changes:
            changes["extra"] = restore_redacted_extra(changes["extra"], current.extra)
        updated = current.model_copy(update=changes)
        store.put(call.who.tenant, updated, create_only=False)
    _log(call, "patch_connection", conn_id)
    return connection_response(updated)


@route(bp, "/connections/{connection_id}", "DELETE", role=Role.OP, status=204, tag=TAG)
def delete_connection(call: Call) -> None:
    """Delete a connection."""
    conn_id = call.path["connection_id"]
    with store_errors():
        deleted = wiring.connection_store().delete(call.who.tenant, conn_id)
    if not deleted:
        raise NotFound(f"The Connection with connection_id: `{conn_id}` was not found")
    _log(call, "delete_connection", conn_id)
