"""Who is calling: bearer API keys mapped to a tenant and a role.

Roles are Airflow's, each including the ones before it: viewer reads; user also
triggers, clears, marks and pauses; op also manages connections, variables,
pools and backfills; admin also manages API keys. A caller sees only its
tenant's objects; another tenant's object answers 404, never 403, so ids of
other tenants' DAGs cannot be probed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class IamGrant(BaseModel):
    tenant: str
    role: Literal["viewer", "user", "op", "admin"]


class IamSettings(BaseSettings):
    """IAM callers (API Gateway's IAM authorizer, SigV4) mapped to a tenant and role:
    ``SLIPSTREAM_IAM_PRINCIPALS='{"arn:aws:iam::111122223333:role/ci": {"tenant":
    "default", "role": "op"}}'``. Keys are role or user ARNs; an assumed-role
    session is matched by its role. ``SLIPSTREAM_API_AUTH=iam`` puts the IAM
    authorizer in front of every route (read when app.py is imported)."""

    model_config = SettingsConfigDict(env_prefix="SLIPSTREAM_", extra="ignore")

    api_auth: Literal["keys", "iam"] = "keys"
    iam_principals: dict[str, IamGrant] = Field(default_factory=dict)


_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d+):assumed-role/(?P<role>[^/]+)/"
)


def iam_identity(arn: str) -> str:
    """The ARN a grant names for a caller: an STS assumed-role session becomes
    its IAM role (``arn:aws:iam::<account>:role/<name>``)."""
    match = _ASSUMED_ROLE.match(arn)
    if match is None:
        return arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


def iam_principal(context: Any, settings: IamSettings) -> Principal | None:
    """The principal of a SigV4-signed call API Gateway has verified, if it is granted."""
    identity = (context or {}).get("identity") or {}
    arn = identity.get("userArn")
    if not arn:
        return None
    found = iam_identity(arn)
    for named, grant in settings.iam_principals.items():
        if named in (arn, found) or iam_identity(named) == found:
            return Principal(
                tenant=grant.tenant, role=Role.parse(grant.role), key_id=f"iam:{found}", name=found
            )
    raise Forbidden(f"IAM caller {found} has no Slipstream role (SLIPSTREAM_IAM_PRINCIPALS)")


def authenticate(
    headers: Any, keys: Any, now: dt.datetime, context: Any = None, iam: IamSettings | None = None
) -> Principal:
    if iam is not None and iam.api_auth == "iam":
        principal = iam_principal(context, iam)
        if principal is None:
            raise Unauthorized("Not authenticated: this API takes SigV4-signed (IAM) calls")
        return principal
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


@functools.cache
def iam_settings() -> IamSettings:
    return IamSettings()


def require(principal: Principal, role: Role) -> None:
    if principal.role < role:
        raise Forbidden(
            f"role {principal.role.label!r} may not do this; it needs {role.label!r} or higher"
        )
