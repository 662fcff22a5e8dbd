"""Moving a run's counters once, with one UpdateItem instead of a transaction.

A finished try owes the run item counter moves (finished / total / failed
leaves, its map's tally, its wide joins' counts). They are ADDs, so a retry
of one whose answer was lost (an HTTP 500 after DynamoDB applied it) would
count twice. A one-item transaction with a ``ClientRequestToken`` makes the
retry a no-op, but costs twice the write units and answers with nothing, so
the counters had to be read back. Here the same guarantee comes from the
item itself:

- every settle appends its token to the run item's settle log ``sl`` and
  adds one to its settle count ``sq``, under the condition that ``sl`` does
  not hold the token yet: a repeat that meets its own landed write fails the
  condition, and DynamoDB's ALL_OLD answer shows our token (it won);
- ``sl`` keeps at least the last ``KEEP`` tokens (a settle that sees
  ``2 * KEEP`` removes the oldest ``KEEP``), so the run item stays small;
  that removal waits until the worker has handed off (``trim_due``): it is
  a write of its own and must not stand between a try's end and the next
  try's start;
- botocore must not repeat the call blindly (its retry would meet a log that
  may have dropped our token), so this call has no botocore retries; it is
  repeated here, and only when that is provably safe: after a lost answer,
  the item is read, and if the token is absent while fewer than ``KEEP``
  settles landed since ``floor`` (the settle count read before the try's
  record, so before any attempt of ours), a landed attempt would still be in
  the log: it did not land, and is sent again.

When neither holds (no floor, or more than ``KEEP`` settles since it) the
outcome is unknown, and the move is not repeated: never counted twice. The
counters may then be one short, which the stall net repairs (a run whose
finished count stops moving is recounted from its instances, see
``scheduler.reaping``): at worst a late run, never a wrong one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chalicelib.aws.retries import max_attempts
from chalicelib.store.base import StoreError
from chalicelib.store.writes import update_request

log = logging.getLogger("slipstream.store")

SETTLE_COUNT = "sq"
SETTLE_LOG = "sl"
KEEP = 16
"""The log holds at least the last KEEP settle tokens (at most 2 * KEEP, about
200 bytes of the run item)."""

CONDITION_FAILED = "ConditionalCheckFailedException"
_NOT_APPLIED = {  # answers that say DynamoDB did not apply the request
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionConflictException",
}
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 2.0


def settle_token(token: str) -> str:
    """A short token for the log, derived from the write being settled (its
    repeats reuse it). 12 hex characters: 48 bits, ample within one run."""
    import hashlib

    return hashlib.sha256(f"{token}:counters".encode()).hexdigest()[:12]


class Settler:
    """Applies counter moves once; one per store (it caches a retry-less client)."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, seed: int | None = None):
        self._sleep = sleep
        self._random = random.Random(seed)
        self._clients: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._due: dict[tuple[str, Any, Any], tuple[Model, Any]] = {}

    def settle(
        self,
        item: Model,
        actions: list[Action],
        condition: Condition | None,
        token: str,
        floor: int | None,
    ) -> bool:
        """Apply ``actions`` (ADDs) to ``item`` unless its log shows ``token``;
        ``item`` then holds the run item as it is after the move. False when the
        outcome could not be known and the move was left to the stall net."""
        model = type(item)
        count, entries = getattr(model, SETTLE_COUNT), getattr(model, SETTLE_LOG)
        guard = ~entries.contains(token)  # type: ignore[attr-defined]
        if condition is not None:
            guard = guard & condition
        full = [*actions, count.add(1), entries.set((entries | []).append([token]))]
        table, kwargs = update_request(item, full, guard, old_on_failure=True)
        hash_key, range_key = item._get_hash_range_key_serialized_values()
        client = self._client(table.connection)
        attempts = max_attempts()
        for attempt in range(attempts):
            try:
                answer = client.update_item(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == CONDITION_FAILED:
                    found = exc.response.get("Item") or _read(table, hash_key, range_key)
                    if found is not None and token in _log_of(found):
                        item.deserialize(found)  # our earlier attempt: it won
                        return True
                    raise StoreError(f"settle of {_describe(item)}: condition failed") from exc
                if code in _NOT_APPLIED:
                    self._backoff(attempt)
                    continue
                if not self._may_repeat(item, table, hash_key, range_key, token, floor):
                    return item_known(item)
                self._backoff(attempt)
                continue
            except EndpointConnectionError:  # never reached DynamoDB
                self._backoff(attempt)
                continue
            except BotoCoreError:  # sent, answer lost: applied or not
                if not self._may_repeat(item, table, hash_key, range_key, token, floor):
                    return item_known(item)
                self._backoff(attempt)
                continue
            raw = answer.get("Attributes") or {}
            item.deserialize(raw)
            logged = len(_log_of(raw))
            if logged >= 4 * KEEP:  # trims owed and never made: make one now
                self._trim(item, table, hash_key, range_key)
            elif logged >= 2 * KEEP:
                with self._lock:
                    self._due[(table.table_name, hash_key, range_key)] = (item, table)
            return True
        raise StoreError(f"settle of {_describe(item)}: DynamoDB refused it {attempts} times")

    def _may_repeat(
        self,
        item: Model,
        table: Any,
        hash_key: Any,
        range_key: Any,
        token: str,
        floor: int | None,
    ) -> bool:
        """After a lost answer: True to send the move again (it provably did not
        land). False with ``item`` loaded: it landed, or nobody can tell (then
        ``item`` is marked unknown for ``item_known``)."""
        try:
            found = _read(table, hash_key, range_key)
        except Exception as exc:
            raise StoreError(f"settle of {_describe(item)}: outcome unknown") from exc
        if found is None:
            raise StoreError(f"settle of {_describe(item)}: the run item is gone")
        item.deserialize(found)
        if token in _log_of(found):
            item._settle_unknown = False  # type: ignore[attr-defined]
            return False
        settled = int(found.get(SETTLE_COUNT, {}).get("N", "0"))
        if floor is not None and settled - floor < KEEP:
            return True
        log.warning(
            "%s: a counter move's answer was lost and %s settles landed since; "
            "not repeating it (the stall check recounts the run if it was lost)",
            _describe(item),
            "an unknown number of" if floor is None else settled - floor,
        )
        item._settle_unknown = True  # type: ignore[attr-defined]
        return False

    def trim_due(self) -> None:
        """Shorten the logs this settler's settles found long (after the hand-off)."""
        with self._lock:
            due, self._due = self._due, {}
        for (_, hash_key, range_key), (item, table) in due.items():
            self._trim(item, table, hash_key, range_key)

    def _trim(self, item: Model, table: Any, hash_key: Any, range_key: Any) -> None:
        """Drop the oldest KEEP tokens; a repeat or a race removes the oldest KEEP
        of a log that still holds at least 2 * KEEP, so the last KEEP always stay."""
        model = type(item)
        entries = getattr(model, SETTLE_LOG)
        kwargs = table.connection.get_operation_kwargs(
            table.table_name,
            hash_key,
            range_key=range_key,
            actions=[entries[i].remove() for i in range(KEEP)],
            condition=size(entries) >= 2 * KEEP,
        )
        try:
            table.connection.client.update_item(**kwargs)
        except (ClientError, BotoCoreError) as exc:  # the next settle trims instead
            log.debug("settle log of %s not trimmed: %s", _describe(item), exc)

    def _backoff(self, attempt: int) -> None:
        self._sleep(self._random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))

    def _client(self, connection: Any) -> Any:
        """A sibling of pynamodb's client, from its botocore session (same
        endpoint, region, credentials and proxies), that makes one attempt per call."""
        client = connection.client
        with self._lock:
            found = self._clients.get(id(client))
            if found is None:
                config = client.meta.config.merge(
                    Config(retries={"mode": "standard", "total_max_attempts": 1})
                )
                found = connection.session.create_client(
                    "dynamodb",
                    region_name=client.meta.region_name,
                    endpoint_url=client.meta.endpoint_url,
                    config=config,
                )
                self._clients[id(client)] = found
            return found


def item_known(item: Model) -> bool:
    """True when ``item`` shows the move landed; False when it is unknown."""
    return not getattr(item, "_settle_unknown", False)


def _read(table: Any, hash_key: Any, range_key: Any) -> dict[str, Any] | None:
    data = table.get_item(hash_key, range_key=range_key, consistent_read=True)
    found = data.get("Item")
    return None if found is None else dict(found)


def _log_of(raw: dict[str, Any]) -> list[str]:
    return [entry.get("S", "") for entry in raw.get(SETTLE_LOG, {}).get("L", [])]


def _describe(item: Model) -> str:
    hash_key, range_key = item._get_hash_range_key_serialized_values()
    return f"{type(item).Meta.table_name} {hash_key}/{range_key}"
