"""What the routes work with, built once per warm container from the environment.

Everything hangs off ``wiring.state_store()``: when the wiring is reset (a
restarted local stack, another test's moto), the next request builds afresh.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from chalicelib import wiring
from chalicelib.scheduler.specs import SpecCache
from chalicelib.store.api_keys import ApiKeyStore
from chalicelib.store.catalog import Catalog
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.event_log import EventLog


def now() -> dt.datetime:
    return wiring.utc_now()


@functools.lru_cache(maxsize=4)
def _built(store: DynamoStateStore) -> tuple[Catalog, ApiKeyStore, EventLog, SpecCache]:
    return (
        Catalog(store),
        ApiKeyStore(store.models.api_key),
        EventLog(store.models.event_log),
        SpecCache(store),
    )


def catalog() -> Catalog:
    return _built(wiring.state_store())[0]


def api_keys() -> ApiKeyStore:
    return _built(wiring.state_store())[1]


def event_log() -> EventLog:
    return _built(wiring.state_store())[2]


def specs() -> SpecCache:
    return _built(wiring.state_store())[3]


def scheduler() -> Any:
    return wiring.scheduler()


def signin_codes() -> Any:
    """One-time UI sign-in codes, kept in the API key table."""
    from chalicelib.store.signin_codes import SigninCodes

    return SigninCodes(wiring.state_store().models.api_key, api_keys())
