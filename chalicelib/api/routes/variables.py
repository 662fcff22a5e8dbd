"""``/variables``: a tenant's variables in SSM Parameter Store (op and admin only)."""

from __future__ import annotations

import json

from chalice import Blueprint

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.secrets import (
    SecretListQuery,
    UpdateMask,
    VariableBody,
    VariableCollection,
    VariableResponse,
)
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.secrets_common import offset_page, store_errors
from chalicelib.api.routing import Call, route
from chalicelib.secrets.secret_masker import is_sensitive_name
from chalicelib.secrets.variable_store import VariableRecord

bp = Blueprint(__name__)
TAG = "Variable"
REDACTED = "***"


def variable_response(record: VariableRecord) -> VariableResponse:
    value = REDACTED if is_sensitive_name(record.key) else record.value
    return VariableResponse(key=record.key, value=value, description=record.description)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _log(call: Call, event: str, key: str) -> None:
    deps.event_log().record(
        call.who.tenant, event, owner=call.who.owner, when=deps.now(), extra={"key": key}
    )


@route(
    bp,
    "/variables",
    "GET",
    role=Role.OP,
    query=SecretListQuery,
    response=VariableCollection,
    tag=TAG,
)
def get_variables(call: Call) -> VariableCollection:
    """List the tenant's variables (secret-looking values as ***)."""
    store = wiring.variable_store()
    tenant = call.who.tenant
    with store_errors():
        page, total = offset_page(
            lambda token: store.list(tenant, limit=10, next_token=token),
            call.query.offset,
            call.query.limit,
        )
    page.sort(key=lambda v: v.key, reverse=call.query.order_by.startswith("-"))
    return VariableCollection(variables=[variable_response(v) for v in page], total_entries=total)


@route(bp, "/variables/{variable_key}", "GET", role=Role.OP, response=VariableResponse, tag=TAG)
def get_variable(call: Call) -> VariableResponse:
    """Get one variable."""
    key = call.path["variable_key"]
    with store_errors():
        record = wiring.variable_store().get(call.who.tenant, key)
    if record is None:
        raise NotFound(f"The Variable with key: `{key}` was not found")
    return variable_response(record)


@route(
    bp,
    "/variables",
    "POST",
    role=Role.OP,
    body=VariableBody,
    response=VariableResponse,
    status=201,
    tag=TAG,
)
def post_variable(call: Call) -> VariableResponse:
    """Create a variable."""
    body: VariableBody = call.body
    record = VariableRecord(key=body.key, value=_text(body.value), description=body.description)
    with store_errors():
        wiring.variable_store().put(call.who.tenant, record, create_only=True)
    _log(call, "post_variable", body.key)
    return variable_response(record)


@route(
    bp,
    "/variables/{variable_key}",
    "PATCH",
    role=Role.OP,
    query=UpdateMask,
    body=VariableBody,
    response=VariableResponse,
    tag=TAG,
)
def patch_variable(call: Call) -> VariableResponse:
    """Change a variable's value or description."""
    key = call.path["variable_key"]
    body: VariableBody = call.body
    if body.key != key:
        raise BadRequest("The key in the body must match the one in the path")
    store = wiring.variable_store()
    mask = call.query.update_mask or ["value", "description"]
    unknown = [f for f in mask if f not in ("value", "description")]
    if unknown:
        raise BadRequest(f"Invalid field `{unknown[0]}` in update mask")
    with store_errors():
        current = store.get(call.who.tenant, key)
        if current is None:
            raise NotFound(f"The Variable with key: `{key}` was not found")
        record = VariableRecord(
            key=key,
            value=_text(body.value) if "value" in mask else current.value,
            description=body.description if "description" in mask else current.description,
        )
        store.put(call.who.tenant, record, create_only=False)
    _log(call, "patch_variable", key)
    return variable_response(record)


@route(bp, "/variables/{variable_key}", "DELETE", role=Role.OP, status=204, tag=TAG)
def delete_variable(call: Call) -> None:
    """Delete a variable."""
    key = call.path["variable_key"]
    with store_errors():
        deleted = wiring.variable_store().delete(call.who.tenant, key)
    if not deleted:
        raise NotFound(f"The Variable with key: `{key}` was not found")
    _log(call, "delete_variable", key)
