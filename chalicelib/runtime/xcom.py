"""Where task results (XComs) live between tries, behind one small protocol.

Values are kept in their JSON form (``chalicelib.core.values.encode``) even in
memory, so a DAG that passes a value locally is sure to pass it through the
DynamoDB store too, and no puller can mutate what another puller sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.values import OPAQUE_TAG, TUPLE_TAG, decode, encode

RETURN_VALUE_KEY = "return_value"

_PLAIN = (str, int, bool, type(None))


class XComValueError(SlipstreamError):
    """A task tried to store a value that has no JSON form."""


@runtime_checkable
class XComStore(Protocol):
    """The results of one DAG run; keys are (task_id, map_index, key).

    The runtime also uses optional methods when a store has them:
    ``clear(task_id, map_index)`` (a new try starts with no values, as in
    Airflow); ``push_encoded`` / ``pull_encoded``, which take and give the
    JSON form so a result is encoded once; and ``pull_element``, which gives
    one element of a stored list (and its length), so a mapped instance reads
    and decodes only its own element of a large upstream list.
    """

    def push(self, task_id: str, map_index: int, key: str, value: Any) -> None: ...

    def pull(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        """``(found, value)``: ``found`` tells a stored None from a missing value."""
        ...

    def pull_mapped(self, task_id: str, key: str) -> list[Any]:
        """The values of every mapped instance that pushed ``key``, by map_index."""
        ...


def encode_for_xcom(value: Any, *, task_id: str, key: str) -> Any:
    """JSON form of ``value``, or an error naming the task, key and offending type."""
    if isinstance(value, _PLAIN):
        return value
    encoded = encode(value)
    opaque = _first_opaque(encoded)
    if opaque is not None:
        raise XComValueError(
            f"task {task_id!r} pushed XCom {key!r} with a value that is not JSON-safe "
            f"({opaque}); return or push only JSON data: str, int, float, bool, None, "
            "lists, tuples, dicts with str keys, datetime, date, timedelta"
        )
    return encoded


def _first_opaque(encoded: Any) -> str | None:
    stack = [encoded]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) == 1 and OPAQUE_TAG in item:
                return str(item[OPAQUE_TAG])
            stack.extend(v for v in item.values() if not isinstance(v, _PLAIN))
        elif isinstance(item, list):
            stack.extend(v for v in item if not isinstance(v, _PLAIN))
    return None


def indexable(encoded: Any) -> bool:
    """A stored list, tuple or plain dict (not a tagged scalar such as a datetime)."""
    if isinstance(encoded, list):
        return True
    if not isinstance(encoded, dict):
        return False
    if len(encoded) == 1:
        (tag,) = encoded
        return tag == TUPLE_TAG or not (tag.startswith("__") and tag.endswith("__"))
    return True


def decode_item(encoded: Any, index: int) -> tuple[int, Any]:
    """Length of an encoded list/tuple/dict and its decoded item ``index``.

    Lets a mapped try take its one element without decoding the whole upstream
    result: with 10,000 instances that is the difference between O(n) and O(n²).
    A dict yields its ``(key, value)`` pairs, as Airflow maps over them.
    """
    if isinstance(encoded, dict) and len(encoded) == 1:
        ((tag, inner),) = encoded.items()
        if tag == "__tuple__":
            return len(inner), decode(inner[index])
    if isinstance(encoded, list):
        return len(encoded), decode(encoded[index])
    if isinstance(encoded, dict):
        pair = _nth(iter(encoded.items()), index)
        return len(encoded), (pair[0], decode(pair[1]))
    raise TypeError(f"cannot index a {type(decode(encoded)).__name__}")


def _nth(items: Iterator[tuple[str, Any]], index: int) -> tuple[str, Any]:
    for i, pair in enumerate(items):
        if i == index:
            return pair
    raise IndexError(index)


class InMemoryXComStore:
    """Thread-safe store for local runs and tests (one instance per DAG run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_instance: dict[tuple[str, int], dict[str, Any]] = {}
        self._mapped: dict[tuple[str, str], dict[int, Any]] = {}

    def push(self, task_id: str, map_index: int, key: str, value: Any) -> None:
        encoded = encode_for_xcom(value, task_id=task_id, key=key)
        self.push_encoded(task_id, map_index, key, encoded)

    def push_encoded(self, task_id: str, map_index: int, key: str, encoded: Any) -> None:
        """Store a value already in JSON form (the runtime encodes results once)."""
        with self._lock:
            self._by_instance.setdefault((task_id, map_index), {})[key] = encoded
            if map_index >= 0:
                self._mapped.setdefault((task_id, key), {})[map_index] = encoded

    def pull(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        found, encoded = self.pull_encoded(task_id, map_index, key)
        return found, decode(encoded) if found else None

    def pull_encoded(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        """The stored JSON form, for callers that decode only part of it."""
        with self._lock:
            values = self._by_instance.get((task_id, map_index))
            if values is None or key not in values:
                return False, None
            return True, values[key]

    def pull_element(
        self, task_id: str, map_index: int, key: str, index: int
    ) -> tuple[bool, int, Any]:
        """``(found, length, element index)`` without decoding the rest."""
        found, encoded = self.pull_encoded(task_id, map_index, key)
        if not found:
            return False, 0, None
        length, value = decode_item(encoded, index)
        return True, length, value

    def pull_mapped(self, task_id: str, key: str) -> list[Any]:
        with self._lock:
            by_index = self._mapped.get((task_id, key), {})
            encoded = [by_index[i] for i in sorted(by_index)]
        return [decode(v) for v in encoded]

    def clear(self, task_id: str, map_index: int) -> None:
        """Forget one instance's values: like Airflow, a new try starts with none."""
        with self._lock:
            values = self._by_instance.pop((task_id, map_index), None)
            if values and map_index >= 0:
                for key in values:
                    self._mapped.get((task_id, key), {}).pop(map_index, None)
