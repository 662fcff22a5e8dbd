"""Query one partition on the local stack, as DynamoDB does, not the whole table.

moto 5.2 answers every page of a table Query by listing and sorting every item
of the table, then keeping the partition's: a page costs the table's size.
The grid's one Query per run (a 10,000-task run is two pages) then took
seconds per page once a bench had seeded 250,000 instances, and parallel
pages timed out. ``partition_queries`` hands moto's query only the items of
the asked partition (a table Query, not an index one); moto's own code still
sorts, pages, filters and projects them, so the answers are moto's. A
``BETWEEN`` on a string sort key hands it only the items in that range.

tests/local/test_moto_query.py checks the answers equal moto's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models.table import Table

_PARTITION = threading.local()  # the (table, items) the current thread's query reads


def _all_items(original: Any) -> Any:
    def all_items(self: Table) -> Any:
        held = getattr(_PARTITION, "held", None)
        if held is not None and held[0] is self:
            return list(held[1])
        return original(self)

    return all_items


def _query(original: Any) -> Any:
    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key) or {}
        comparison = args[0] if args else kwargs.get("range_comparison")
        bounds = args[1] if len(args) > 1 else kwargs.get("range_objs")
        _PARTITION.held = (self, _in_range(partition, comparison, bounds))
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            _PARTITION.held = None

    return query


def _in_range(partition: dict[Any, Any], comparison: Any, bounds: Any) -> list[Any]:
    """The partition's items, only those whose string sort key is in a BETWEEN
    range when the Query has one (moto then compares them again itself): the
    grid's window of 40 tasks out of a 10,000-task run sorts 40 items, not 10,000."""
    if comparison != "BETWEEN" or any(getattr(b, "type", None) != "S" for b in bounds or ()):
        return list(partition.values())
    low, high = bounds[0].value, bounds[1].value
    return [item for key, item in partition.items() if low <= key.value <= high]


@contextlib.contextmanager
def partition_queries() -> Iterator[None]:
    """Table Queries read only their partition while the context is open."""
    saved = (Table.all_items, Table.query)
    Table.all_items = _all_items(saved[0])  # type: ignore[method-assign]
    Table.query = _query(saved[1])  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items, Table.query = saved  # type: ignore[method-assign]
