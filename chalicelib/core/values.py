"""A JSON encoding for operator arguments, results and params: no pickles.

Plain JSON values pass through; a few Python types common in DAG files get a
tagged object so they round-trip exactly. References to upstream results
(XCom) and to callables inside the bundle are tagged the same way. Anything
else is recorded by type name only: workers rebuild the real object by
importing the DAG file, the control plane never needs it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

XCOM_TAG = "__xcom__"
CALLABLE_TAG = "__callable__"
DATETIME_TAG = "__datetime__"
DATE_TAG = "__date__"
TIMEDELTA_TAG = "__timedelta__"
TUPLE_TAG = "__tuple__"
OPAQUE_TAG = "__opaque__"
_TAGS = {XCOM_TAG, CALLABLE_TAG, DATETIME_TAG, DATE_TAG, TIMEDELTA_TAG, TUPLE_TAG, OPAQUE_TAG}


def xcom_ref(task_id: str, key: str = "return_value") -> dict[str, Any]:
    return {XCOM_TAG: {"task_id": task_id, "key": key}}


def callable_ref(module: str, qualname: str) -> dict[str, Any]:
    return {CALLABLE_TAG: f"{module}:{qualname}"}


def is_tagged(value: Any, tag: str) -> bool:
    return isinstance(value, dict) and len(value) == 1 and tag in value


def encode(value: Any) -> Any:
    """Turn a Python value into JSON data; unknown objects become opaque tags."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {OPAQUE_TAG: f"float:{value}"}
        return value
    if isinstance(value, dt.datetime):
        return {DATETIME_TAG: value.isoformat()}
    if isinstance(value, dt.date):
        return {DATE_TAG: value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TIMEDELTA_TAG: value.total_seconds()}
    if isinstance(value, tuple):
        return {TUPLE_TAG: [encode(v) for v in value]}
    if isinstance(value, (list, set, frozenset)):
        items = [encode(v) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=repr)
        return items
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {OPAQUE_TAG: "dict with non-string keys"}
    encoder = getattr(value, "__slipstream_encode__", None)
    if encoder is not None:
        return encoder()
    kind = type(value)
    return {OPAQUE_TAG: f"{kind.__module__}.{kind.__qualname__}"}


def decode(value: Any) -> Any:
    """Inverse of :func:`encode` for everything but opaque values and references."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == DATETIME_TAG:
                return dt.datetime.fromisoformat(inner)
            if tag == DATE_TAG:
                return dt.date.fromisoformat(inner)
            if tag == TIMEDELTA_TAG:
                return dt.timedelta(seconds=inner)
            if tag == TUPLE_TAG:
                return tuple(decode(v) for v in inner)
            if tag in _TAGS:
                return value
        return {k: decode(v) for k, v in value.items()}
    return value


def is_json_safe(value: Any) -> bool:
    """True when ``encode`` would keep the value without an opaque tag."""
    encoded = encode(value)
    return OPAQUE_TAG not in _flatten_tags(encoded)


def _flatten_tags(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.update(k for k in item if k in _TAGS)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
