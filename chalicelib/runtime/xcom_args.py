"""Finding and resolving references to upstream results inside operator arguments.

An XComArg can sit anywhere in an operator's arguments (``op_args``,
``op_kwargs``, ``bash_command``, inside lists and dicts); it must become the
upstream value before the operator runs. Detection is by shape (an object with
``operator`` and ``resolve``), so the runtime needs nothing from the SDK but its
contract, and SDK variants (plain, mapped-over, zipped) all resolve themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.sdk.xcom_arg import ResolvableArg

_LEAVES = (str, bytes, int, float, bool, type(None))


def is_xcom_arg(value: Any) -> bool:
    return isinstance(value, ResolvableArg)


def resolve_nested(value: Any, context: Mapping[str, Any]) -> Any:
    """``value`` with every placeholder replaced by its value; untouched parts are not copied."""
    if isinstance(value, _LEAVES):
        return value
    if is_xcom_arg(value):
        return value.resolve(context)
    if isinstance(value, dict):
        if not any(_holds_xcom_arg(v) for v in value.values()):
            return value
        return {k: resolve_nested(v, context) for k, v in value.items()}
    if isinstance(value, list):
        if not any(_holds_xcom_arg(v) for v in value):
            return value
        return [resolve_nested(v, context) for v in value]
    if isinstance(value, tuple):
        if not any(_holds_xcom_arg(v) for v in value):
            return value
        items = [resolve_nested(v, context) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, (set, frozenset)):
        if not any(_holds_xcom_arg(v) for v in value):
            return value
        return type(value)(resolve_nested(v, context) for v in value)
    return value


def _holds_xcom_arg(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _LEAVES):
            continue
        if is_xcom_arg(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return False
