"""One-time sign-in codes: the link ``slipstream dev`` prints signs the UI in.

A code reads ``ssc_<code_id>_<secret>`` and lives in the API key table as an
item whose id is ``signin-<code_id>``, holding the digest of its secret, the
tenant and role it grants and a short expiry. Exchanging it marks it used with
a conditional write, so of two exchanges of one code exactly one wins, and it
then mints a session key (an ordinary API key with an expiry). The code itself
is never a bearer key: ``ApiKeyStore`` refuses ids with this prefix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.store.api_keys import CODE_ITEM_PREFIX, ApiKey, ApiKeyStore
from chalicelib.store.base import StoreError
from chalicelib.store.writes import CONDITION_FAILED

PREFIX = "ssc"
CODE_LIFETIME = dt.timedelta(minutes=10)
SESSION_LIFETIME = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    key: ApiKey
    text: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SigninCodes:
    def __init__(self, model: type[Any], keys: ApiKeyStore):
        self.model = model
        self.keys = keys

    def create(
        self, *, tenant: str, role: str, now: dt.datetime, lifetime: dt.timedelta = CODE_LIFETIME
    ) -> str:
        """A new code's text; only its digest is stored."""
        code_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        item = self.model(
            CODE_ITEM_PREFIX + code_id,
            digest=_digest(secret),
            tn=tenant,
            role=role,
            name="ui-signin-code",
            created=now,
            expires=now + lifetime,
        )
        item.save(condition=self.model.key_id.does_not_exist())
        return f"{PREFIX}_{code_id}_{secret}"

    def exchange(self, code: str, now: dt.datetime) -> Session | None:
        """A session key for a valid, unexpired, unused code; None otherwise.

        The code is spent before the session is made: a crash between the two
        loses one code (print another), never hands out two sessions."""
        parts = code.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            return None
        item_id = CODE_ITEM_PREFIX + parts[1]
        try:
            item = self.model.get(item_id, consistent_read=True)
        except DoesNotExist:
            return None
        if not hmac.compare_digest(item.digest, _digest(parts[2])):
            return None
        model = self.model
        try:
            # used once: not revoked (spent) yet, and not past its expiry now
            model(item_id).update(
                actions=[model.revoked.set(now)],
                condition=model.revoked.does_not_exist() & (model.expires > now),
            )
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return None
            raise StoreError(f"cannot spend sign-in code {parts[1]}") from exc
        key, text = self.keys.create(
            tenant=item.tn,
            role=item.role,
            now=now,
            name="ui-session",
            expires_at=now + SESSION_LIFETIME,
        )
        return Session(key=key, text=text)
