"""Which arguments one mapped task instance gets, as Airflow's expansion defines it.

``expand`` maps over the cross product of its sources in declaration order,
the last one varying fastest (``itertools.product`` order); a dict source
contributes its ``(key, value)`` pairs. ``expand_kwargs`` takes item
``map_index`` of a list of kwargs dicts. Only the one combination asked for is
built, so an instance of a 10,000-wide map costs the same as an unmapped task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.core.errors import MappingError
from chalicelib.core.values import TUPLE_TAG
from chalicelib.runtime.xcom import decode_item, indexable
from chalicelib.runtime.xcom_args import is_xcom_arg, resolve_nested
from chalicelib.sdk.xcom_arg import XComArg
from chalicelib.sdk.xcom_arg_ops import ZippedResult, ZipXComArg, split_map


@dataclass(frozen=True)
class MappedArguments:
    kwargs: dict[str, Any]
    from_upstream: frozenset[int]  # ids of values that came from XCom: not templated
    total: int  # how many instances the map has


def arguments_for_index(
    mapped: Any, map_index: int, context: Mapping[str, Any], xcoms: Any
) -> MappedArguments:
    """The kwargs for ``mapped.unmap`` at ``map_index``."""
    task_id = mapped.task_id
    kind = getattr(mapped, "expand_kind", "expand")
    expand_input = dict(mapped.expand_input)
    if kind == "expand_kwargs":
        return _kwargs_item(task_id, expand_input, map_index, context, xcoms)
    if kind != "expand":
        raise MappingError(f"task {task_id!r}: unknown expand kind {kind!r}")
    single = _single_element(task_id, expand_input, map_index, xcoms)
    if single is not None:
        return single
    sources = [
        (name, _Source(task_id, name, value, context, xcoms))
        for name, value in expand_input.items()
    ]
    total = 1
    for _, source in sources:
        total *= source.length
    if not 0 <= map_index < total:
        raise MappingError(f"task {task_id!r}: map index {map_index} is outside 0..{total - 1}")
    kwargs: dict[str, Any] = {}
    from_upstream: set[int] = set()
    remainder = map_index
    for name, source in reversed(sources):
        remainder, position = divmod(remainder, source.length)
        value = source.item(position)
        kwargs[name] = value
        if source.from_upstream:
            from_upstream.add(id(value))
    ordered = {name: kwargs[name] for name, _ in sources}
    return MappedArguments(ordered, frozenset(from_upstream), total)


def _single_element(
    task_id: str, expand_input: dict[str, Any], map_index: int, xcoms: Any
) -> MappedArguments | None:
    """One source read straight from the store: just element ``map_index`` (one
    page of a large list). None when the general path must decide (several
    sources, a computed reference, a value that is not a list or dict)."""
    if len(expand_input) != 1 or not hasattr(xcoms, "pull_element"):
        return None
    ((name, value),) = expand_input.items()
    value, transform = split_map(value)  # XComArg.map: the function runs on this element only
    if not (is_xcom_arg(value) and _plain_reference(value)):
        return None
    try:
        found, length, item = xcoms.pull_element(value.operator.task_id, -1, value.key, map_index)
    except (TypeError, IndexError):
        return None  # not indexable, or out of range: the general path says so properly
    if not found:
        return None
    if transform is not None:
        item = transform(item)
    return MappedArguments({name: item}, frozenset({id(item)}), length)


class _Source:
    """One expanded argument: its length and, lazily, one of its items."""

    def __init__(self, task_id: str, name: str, value: Any, context: Mapping[str, Any], xcoms: Any):
        value, self._transform = split_map(value)
        self.from_upstream = is_xcom_arg(value)
        self._context = context
        self._encoded: Any = None
        self._items: Sequence[Any] | None = None
        if isinstance(value, ZipXComArg):  # each input read as its own source, lazily
            parts = [_Source(task_id, name, arg, context, xcoms) for arg in value.args]
            self._items = ZippedResult(parts, value.fillvalue)
            self.length = len(self._items)
            return
        if self.from_upstream and _plain_reference(value) and hasattr(xcoms, "pull_encoded"):
            found, encoded = xcoms.pull_encoded(value.operator.task_id, -1, value.key)
            if found and indexable(encoded):
                self._encoded = encoded
                is_tuple = isinstance(encoded, dict) and len(encoded) == 1 and TUPLE_TAG in encoded
                self.length = len(encoded[TUPLE_TAG]) if is_tuple else len(encoded)
                return
        resolved = value.resolve(context) if self.from_upstream else value
        self._items = _as_items(task_id, name, resolved)
        self.length = len(self._items)

    def item(self, position: int) -> Any:
        if self._items is not None:
            item = self._items[position]
            item = item if self.from_upstream else resolve_nested(item, self._context)
        else:
            item = decode_item(self._encoded, position)[1]
        return item if self._transform is None else self._transform(item)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, position: int) -> Any:
        return self.item(position)


def _plain_reference(value: Any) -> bool:
    """An XComArg that reads one unmapped task's stored value as it is."""
    operator = getattr(value, "operator", None)
    key = getattr(value, "key", None)
    if operator is None or not isinstance(key, str):
        return False
    if getattr(operator, "expand_input", None) is not None:
        return False  # a mapped upstream: its value is the list of instance values
    return type(value) is XComArg


def _as_items(task_id: str, name: str, value: Any) -> Sequence[Any]:
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return value
    raise MappingError(
        f"task {task_id!r}: expand argument {name!r} must be a list or dict, "
        f"got {type(value).__name__}"
    )


def _kwargs_item(
    task_id: str,
    expand_input: dict[str, Any],
    map_index: int,
    context: Mapping[str, Any],
    xcoms: Any,
) -> MappedArguments:
    if "kwargs" in expand_input and len(expand_input) == 1:
        source_value = expand_input["kwargs"]
    elif len(expand_input) == 1:
        (source_value,) = expand_input.values()
    else:
        raise MappingError(f"task {task_id!r}: expand_kwargs needs exactly one source")
    source = _Source(task_id, "kwargs", source_value, context, xcoms)
    if not 0 <= map_index < source.length:
        raise MappingError(
            f"task {task_id!r}: map index {map_index} is outside 0..{source.length - 1}"
        )
    item = source.item(map_index)
    if not isinstance(item, Mapping):
        raise MappingError(
            f"task {task_id!r}: expand_kwargs() expects a list[dict], "
            f"not list[{type(item).__name__}]"
        )
    kwargs = {str(k): resolve_nested(v, context) for k, v in item.items()}
    from_upstream = (
        frozenset(id(v) for v in kwargs.values()) if source.from_upstream else frozenset()
    )
    return MappedArguments(kwargs, from_upstream, source.length)
