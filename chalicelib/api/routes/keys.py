"""``/slipstream/keys``: API keys of the caller's tenant (admin only)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.admin import (
    ApiKeyBody,
    ApiKeyCollection,
    ApiKeyResponse,
    CreatedApiKey,
)
from chalicelib.api.errors import NotFound
from chalicelib.api.routing import Call, route
from chalicelib.store.api_keys import ApiKey

bp = Blueprint(__name__)
TAG = "Slipstream: API keys"


def key_response(key: ApiKey) -> ApiKeyResponse:
    return ApiKeyResponse(
        key_id=key.key_id,
        name=key.name,
        tenant=key.tenant,
        role=key.role,  # type: ignore[arg-type]
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


@route(
    bp,
    "/slipstream/keys",
    "POST",
    role=Role.ADMIN,
    body=ApiKeyBody,
    response=CreatedApiKey,
    status=201,
    tag=TAG,
)
def post_key(call: Call) -> CreatedApiKey:
    """Create an API key in the caller's tenant; the answer is the only time it is shown."""
    body: ApiKeyBody = call.body
    key, text = deps.api_keys().create(
        tenant=call.who.tenant,
        role=body.role,
        name=body.name,
        expires_at=body.expires_at,
        now=deps.now(),
    )
    deps.event_log().record(
        call.who.tenant,
        "create_api_key",
        owner=call.who.owner,
        when=deps.now(),
        extra={"key_id": key.key_id, "role": key.role},
    )
    return CreatedApiKey(**key_response(key).model_dump(), api_key=text)


@route(bp, "/slipstream/keys", "GET", role=Role.ADMIN, response=ApiKeyCollection, tag=TAG)
def get_keys(call: Call) -> ApiKeyCollection:
    """List the tenant's API keys (never their secrets)."""
    keys = [key_response(k) for k in deps.api_keys().list(call.who.tenant)]
    return ApiKeyCollection(api_keys=keys, total_entries=len(keys))


@route(bp, "/slipstream/keys/{key_id}", "DELETE", role=Role.ADMIN, status=204, tag=TAG)
def revoke_key(call: Call) -> None:
    """Revoke a key: it stops working at once."""
    key_id = call.path["key_id"]
    key = deps.api_keys().get(key_id)
    if key is None or key.tenant != call.who.tenant or key.revoked_at is not None:
        raise NotFound(f"No active API key {key_id!r}")
    deps.api_keys().revoke(key_id, deps.now())
    deps.event_log().record(
        call.who.tenant,
        "revoke_api_key",
        owner=call.who.owner,
        when=deps.now(),
        extra={"key_id": key_id},
    )
