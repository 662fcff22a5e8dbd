"""Make moto's DynamoDB transactions behave as DynamoDB documents them.

moto 5.2's ``transact_write_items`` snapshots every table it touches with
``copy.deepcopy`` (cost grows with the table: ~40 ms per transaction at a
thousand items, minutes for a 1,000-way mapped run) and applies its writes
without a lock, so two racing transactions can both pass their conditions
(see tests/store/test_concurrency.py).

``faithful_transactions`` runs moto's write operations one at a time
(DynamoDB transactions are serializable) and snapshots only the items a
transaction touches, restoring those on cancellation. Conditions are still
evaluated by moto itself; nothing about our code's writes is simulated here.

It also honours ``ClientRequestToken`` on TransactWriteItems, which moto
ignores: a repeat of a successful request with the same token within 10
minutes succeeds without applying again, and the same token with different
items raises IdempotentParameterMismatchException, as DynamoDB documents. A
cancelled or failed request is not remembered (its retry runs again).
The local stack (``slipstream dev``) and the tests both run under it; entered
twice, it wraps twice and unwinds in order.

``faithful_s3_events`` makes S3's EventBridge notifications look as S3 sends
them (a fresh event id each, the default bus only).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import unix_time
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

_WRITES = ("put_item", "update_item", "delete_item")
_LOCK = threading.RLock()
TOKEN_WINDOW_SECONDS = 600.0
_TOKENS = "_slipstream_request_tokens"  # on the backend: a reset forgets them too
_log = logging.getLogger("slipstream.local")


class IdempotentParameterMismatch(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "The request uses the same client token as a previous, but non-identical request.",
        )


class _NoTableCopy:
    """Stands in for the ``copy`` module inside moto's transaction code."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return value  # we snapshot the touched items instead
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _item_key(backend: DynamoDBBackend, op: dict[str, Any]) -> dict[str, Any] | None:
    table_name = op.get("TableName")
    if not table_name or table_name not in backend.tables:
        return None
    if "Key" in op:
        return dict(op["Key"])
    table = backend.get_table(table_name)
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact(original: Any) -> Any:
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshots: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
            for entry in transact_items:
                _, op = next(iter(entry.items()))
                key = _item_key(self, op)
                if key is None:
                    continue
                current = self.get_item(op["TableName"], key)
                before = None if current is None else copy.deepcopy(current.to_json()["Attributes"])
                snapshots.append((op["TableName"], key, before))
            saved = dynamodb_models.copy
            dynamodb_models.copy = _NoTableCopy()  # type: ignore[assignment]
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, before in reversed(snapshots):
                    if before is None:
                        with contextlib.suppress(Exception):
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, before)
                raise
            finally:
                dynamodb_models.copy = saved

    return transact_write_items


def _idempotent(original: Any) -> Any:
    def transact_write_items(self: DynamoHandler) -> ActionResult:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        digest = hashlib.sha256(
            json.dumps(self.body["TransactItems"], sort_keys=True).encode()
        ).hexdigest()
        backend = self.dynamodb_backend
        with _LOCK:
            seen: dict[str, tuple[str, float]] = backend.__dict__.setdefault(_TOKENS, {})
            now = time.monotonic()
            for old in [t for t, (_, at) in seen.items() if now - at > TOKEN_WINDOW_SECONDS]:
                del seen[old]
            if token in seen:
                if seen[token][0] != digest:
                    raise IdempotentParameterMismatch()
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
            result = original(self)  # raises on cancellation: nothing remembered
            seen[token] = (digest, now)
            return result

    return transact_write_items


def _serialized(original: Any) -> Any:
    def one_at_a_time(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    return one_at_a_time


@contextlib.contextmanager
def faithful_transactions() -> Iterator[None]:
    originals = {
        name: getattr(DynamoDBBackend, name) for name in (*_WRITES, "transact_write_items")
    }
    handler_original = DynamoHandler.transact_write_items
    try:
        for name in _WRITES:
            setattr(DynamoDBBackend, name, _serialized(originals[name]))
        DynamoDBBackend.transact_write_items = _transact(originals["transact_write_items"])  # type: ignore[method-assign]
        DynamoHandler.transact_write_items = _idempotent(handler_original)  # type: ignore[method-assign]
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
        DynamoHandler.transact_write_items = handler_original  # type: ignore[method-assign]


def _s3_event_to_default_bus(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    """moto's S3 -> EventBridge delivery as S3 does it: each event its own id
    (moto gives every event the same one, so event runs, named after the id,
    would start once ever) and only to the default bus's rules (moto offers it
    to every bus)."""
    from moto.events.models import events_backends
    from moto.s3.notifications import _detail_type

    try:
        event: dict[str, Any] = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": _detail_type(event_name),
            "source": "aws.s3",
            "account": account_id,
            "time": unix_time(),
            "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket.name},
                "object": {
                    "key": key.name,
                    "size": key.size,
                    "eTag": key.etag.replace('"', ""),
                    "version-id": key.version_id,
                    "sequencer": f"{time.time_ns():016X}",
                },
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": account_id,
                "source-ip-address": "127.0.0.1",
                "reason": event_name.split(":")[1],
            },
        }
        default_bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        for rule in list(default_bus.rules.values()) if default_bus is not None else []:
            rule.send_to_targets(copy.deepcopy(event), transform_input=False)  # type: ignore[arg-type]
    except Exception:
        # Asynchronous in S3: the upload itself succeeds whatever happens here.
        _log.warning("S3 event %s for %s not delivered to EventBridge", event_name, bucket.name)


@contextlib.contextmanager
def faithful_s3_events() -> Iterator[None]:
    """S3 event notifications to EventBridge with a fresh event id each and on
    the default bus only, as S3 sends them; see ``_s3_event_to_default_bus``."""
    from moto.s3 import notifications

    original = notifications._send_event_bridge_message
    notifications._send_event_bridge_message = _s3_event_to_default_bus
    try:
        yield
    finally:
        notifications._send_event_bridge_message = original
