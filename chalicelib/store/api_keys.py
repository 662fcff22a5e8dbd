"""API keys: random, shown once, stored only as a digest.

A key reads ``ssk_<key_id>_<secret>``. The id is the item's key, so checking a
key is one GetItem; the secret is 256 random bits, so an unsalted SHA-256 is
enough (there is nothing to brute-force, unlike a password) and a leaked table
still grants nothing. Revocation and expiry are checked on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.store.base import StoreError
from chalicelib.store.writes import CONDITION_FAILED

PREFIX = "ssk"
CODE_ITEM_PREFIX = "signin-"
"""Ids of one-time sign-in codes kept in the same table (store.signin_codes):
they are never keys, so verify, get and list skip them."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant: str
    role: str
    name: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def usable(self, now: dt.datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    if parts[1].startswith(CODE_ITEM_PREFIX):
        return None
    return parts[1], parts[2]


class ApiKeyStore:
    def __init__(self, model: type[Any]):
        self.model = model

    def create(
        self,
        *,
        tenant: str,
        role: str,
        now: dt.datetime,
        name: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its full text, which is never stored and cannot be shown again."""
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        item = self.model(
            key_id,
            digest=_digest(secret),
            tn=tenant,
            role=role,
            name=name,
            created=now,
            expires=expires_at,
        )
        item.save(condition=self.model.key_id.does_not_exist())
        return _key(item), f"{PREFIX}_{key_id}_{secret}"

    def verify(self, token: str, now: dt.datetime) -> ApiKey | None:
        """The key a bearer token names, if the secret matches and it is usable."""
        parts = split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        try:
            item = self.model.get(key_id)
        except DoesNotExist:
            return None
        if not hmac.compare_digest(item.digest, _digest(secret)):
            return None
        key = _key(item)
        return key if key.usable(now) else None

    def get(self, key_id: str) -> ApiKey | None:
        if key_id.startswith(CODE_ITEM_PREFIX):
            return None
        try:
            return _key(self.model.get(key_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list(self, tenant: str) -> list[ApiKey]:
        items = self.model.by_tenant.query(tenant)
        return [_key(item) for item in items if not item.key_id.startswith(CODE_ITEM_PREFIX)]

    def revoke(self, key_id: str, now: dt.datetime) -> bool:
        """True when this call revoked the key; False when unknown or revoked already."""
        model = self.model
        try:
            model(key_id).update(
                actions=[model.revoked.set(now)],
                condition=model.key_id.exists() & model.revoked.does_not_exist(),
            )
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot revoke key {key_id}") from exc
        return True


def _key(item: Any) -> ApiKey:
    return ApiKey(
        key_id=item.key_id,
        tenant=item.tn,
        role=item.role,
        name=item.name,
        created_at=item.created,
        expires_at=item.expires,
        revoked_at=item.revoked,
    )
