"""``/slipstream/session``: who a key is, and the UI's one-time sign-in.

The web UI shows only the controls the caller's role allows, so it asks once
who the key is. ``slipstream dev`` prints a link carrying a one-time code; the
UI posts the code here and gets a session key back (the code is never a key,
and is spent on first use).
"""

from __future__ import annotations

import datetime as dt

from chalice import Blueprint
from pydantic import BaseModel, Field

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import BodyModel
from chalicelib.api.errors import Unauthorized
from chalicelib.api.routing import Call, route

bp = Blueprint(__name__)
TAG = "Slipstream: sessions"


class WhoAmI(BaseModel):
    tenant: str
    role: str
    key_id: str
    name: str | None


class CodeBody(BodyModel):
    code: str = Field(min_length=1, max_length=200)


class SessionResponse(WhoAmI):
    api_key: str
    expires_at: dt.datetime | None


@route(bp, "/slipstream/session", "GET", role=Role.VIEWER, response=WhoAmI, tag=TAG)
def get_session(call: Call) -> WhoAmI:
    """The caller's tenant and role, so a client can offer only what it may do."""
    who = call.who
    return WhoAmI(tenant=who.tenant, role=who.role.label, key_id=who.key_id, name=who.name)


@route(
    bp,
    "/slipstream/session",
    "POST",
    role=None,
    body=CodeBody,
    response=SessionResponse,
    status=201,
    tag=TAG,
)
def post_session(call: Call) -> SessionResponse:
    """Exchange a one-time sign-in code for a session key (12 hours)."""
    body: CodeBody = call.body
    session = deps.signin_codes().exchange(body.code, deps.now())
    if session is None:
        raise Unauthorized("Invalid, expired or already used sign-in code")
    key = session.key
    deps.event_log().record(
        key.tenant, "ui_sign_in", owner=f"key:{key.key_id}", when=deps.now(), extra={}
    )
    return SessionResponse(
        tenant=key.tenant,
        role=key.role,
        key_id=key.key_id,
        name=key.name,
        api_key=session.text,
        expires_at=key.expires_at,
    )
