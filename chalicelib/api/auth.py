"""Who is calling: bearer API keys mapped to a tenant and a role.

Roles are Airflow's, each including the ones before it: viewer reads; user also
triggers, clears, marks and pauses; op also manages connections, variables,
pools and backfills; admin also manages API keys. A caller sees only its
tenant's objects; another tenant's object answers 404, never 403, so ids of
other tenants' DAGs cannot be probed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from chalicelib.api.errors import Forbidden, Unauthorized


class Role(IntEnum):
    VIEWER = 1
    USER = 2
    OP = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {text!r}; one of {names}") from None


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: Role
    key_id: str
    name: str | None = None

    @property
    def owner(self) -> str:
        """What the event log records as the actor."""
        return self.name or f"key:{self.key_id}"


def bearer_token(headers: Any) -> str | None:
    value = (headers or {}).get("authorization") or (headers or {}).get("Authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(headers: Any, keys: Any, now: dt.datetime) -> Principal:
    token = bearer_token(headers)
    if token is None:
        raise Unauthorized("Not authenticated: send 'Authorization: Bearer <API key>'")
    key = keys.verify(token, now)
    if key is None:
        raise Unauthorized("Invalid, expired or revoked API key")
    try:
        role = Role.parse(key.role)
    except ValueError:
        raise Unauthorized("API key has an unknown role") from None
    return Principal(tenant=key.tenant, role=role, key_id=key.key_id, name=key.name)


def require(principal: Principal, role: Role) -> None:
    if principal.role < role:
        raise Forbidden(
            f"role {principal.role.label!r} may not do this; it needs {role.label!r} or higher"
        )
