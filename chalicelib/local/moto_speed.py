"""Serialize and project moto's DynamoDB items without the work moto repeats.

moto 5.2 answers every request through a generic, shape-driven serializer.
For DynamoDB that means one recursive pass per attribute of every item, with
a value-picker lookup per member of the ``AttributeValue`` union: about 70% of
the time a Query or BatchGetItem of 100 runs takes on the local stack
(~1.5 ms per item). ``slipstream dev`` pages, ``make demo`` and the tests all
pay it.

An ``AttributeValue`` is already in wire form once moto has turned its
``DynamoType`` objects into ``{type: value}`` dicts; only binary values need
base64. ``fast_item_serialization`` writes those dicts straight into the
response and leaves everything else (the response's other members, errors,
headers, status) to moto.

Projecting an item onto an index's INCLUDE attributes (or a
ProjectionExpression) converts the whole item to plain JSON and back once per
projected name: quadratic in the item's width, ~0.4 ms an item for a run row.
For top-level names (all an index projection and most expressions name) the
item's own values are copied instead; nested paths still go through moto.

The moto server routes each request under one process-wide lock, and finding
the backend for a host lists moto's package folders (``os.listdir`` and an
``isdir`` per folder) and then tries its URL patterns one by one: on the local
stack that was about half the server's CPU, with every request thread queued
behind the lock (bench/throughput.py --profile). A host always maps to the
same backend, so the answer is remembered per host.

tests/local/test_moto_speed.py checks the answers are the same as moto's own,
for every attribute type, and that a host finds the backend moto finds.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_LOCK = threading.Lock()
_ATTRIBUTE_VALUE = "AttributeValue"  # the shape's name in DynamoDB and DynamoDB Streams


def _b64(value: str | bytes) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def wire_value(value: dict[str, Any]) -> dict[str, Any]:
    """One ``AttributeValue`` as DynamoDB's JSON protocol writes it."""
    out: dict[str, Any] = {}
    for kind, inner in value.items():
        if inner is None:
            continue
        if kind == "M":
            out[kind] = {name: wire_value(v) for name, v in inner.items()}
        elif kind == "L":
            out[kind] = [wire_value(v) for v in inner]
        elif kind == "B":
            out[kind] = _b64(inner)
        elif kind == "BS":
            out[kind] = [_b64(v) for v in inner]
        elif kind in ("SS", "NS"):
            out[kind] = [str(v) for v in inner]
        elif kind in ("BOOL", "NULL"):
            out[kind] = bool(inner)
        else:  # S, N
            out[kind] = str(inner)
    return out


def _top_level_names(expressions: list[list[str]]) -> set[str] | None:
    """The names a projection keeps when it names only top-level attributes."""
    names = set()
    for path in expressions:
        if len(path) != 1 or "[" in path[0]:
            return None
        names.add(path[0])
    return names


def _fast_project(original: Any) -> Any:
    def project(self: Item, projection_expressions: list[list[str]]) -> Item:
        names = _top_level_names(projection_expressions)
        if names is None:
            return original(self, projection_expressions)
        projected = Item.__new__(Item)
        projected.hash_key = self.hash_key
        projected.range_key = self.range_key
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs)  # the source passed moto's size check when written
        for name, value in self.attrs.items():
            if name in names:
                dict.__setitem__(attrs, name, copy.deepcopy(value))
        projected.attrs = attrs
        return projected

    return project


def _fast_serialize(original: Any) -> Any:
    def serialize_structure(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        if shape.name == _ATTRIBUTE_VALUE and isinstance(value, dict):
            self._default_serialize(serialized, wire_value(value), shape, key)
            return
        original(self, serialized, value, shape, key)

    return serialize_structure


def _remembered_backends(original: Any) -> Any:
    found: dict[str, Any] = {}

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        if host is None:
            return None
        backend = found.get(host)
        if backend is None:
            backend = original(self, host)
            if backend is not None:  # a miss is rare (moto prints a hint): not kept
                found[host] = backend
        return backend

    return get_backend_for_host


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (BaseJSONSerializer, "_serialize_type_structure", _fast_serialize),
    (Item, "project", _fast_project),
    (DomainDispatcherApplication, "get_backend_for_host", _remembered_backends),
)


@contextlib.contextmanager
def fast_item_serialization() -> Iterator[None]:
    """Patch moto's item serialization and projection; entered twice, it patches
    once (the second entry sees its own patch) and unwinds in order."""
    applied: list[tuple[Any, str, Any]] = []
    with _LOCK:
        for owner, name, make in _PATCHES:
            original = getattr(owner, name)
            if getattr(original, "_slipstream_original", None) is not None:
                continue
            patched = make(original)
            patched._slipstream_original = original
            setattr(owner, name, patched)
            applied.append((owner, name, original))
    try:
        yield
    finally:
        with _LOCK:
            for owner, name, original in reversed(applied):
                setattr(owner, name, original)
