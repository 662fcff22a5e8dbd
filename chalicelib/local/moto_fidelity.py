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
The local stack (``slipstream dev``) and the tests both run under it; entered
twice, it wraps twice and unwinds in order.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_WRITES = ("put_item", "update_item", "delete_item")
_LOCK = threading.RLock()


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
    try:
        for name in _WRITES:
            setattr(DynamoDBBackend, name, _serialized(originals[name]))
        DynamoDBBackend.transact_write_items = _transact(originals["transact_write_items"])  # type: ignore[method-assign]
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
