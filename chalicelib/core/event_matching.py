"""EventBridge event patterns, evaluated here so the scheduler can route an
event that reached its queue to the DAGs whose triggers match it.

Covers the matchers DAG triggers use: exact values, prefix, suffix,
wildcard, anything-but, exists and numeric ranges, on nested fields and on
arrays (a field matches when any element does), as EventBridge documents.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Mapping
from typing import Any

_MISSING = object()
_NUMERIC = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when ``event`` satisfies every field of ``pattern``."""
    for key, rule in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif not _field_matches(rule, value):
            return False
    return True


def _field_matches(rules: list[Any], value: Any) -> bool:
    exists_rules = [r for r in rules if isinstance(r, Mapping) and "exists" in r]
    if exists_rules:
        wanted = bool(exists_rules[0]["exists"])
        return (value is not _MISSING) == wanted
    if value is _MISSING:
        return False
    values = value if isinstance(value, list) else [value]
    return any(_one(rule, v) for rule in rules for v in values)


def _one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return bool(rule == value and type(rule) is type(value)) or (
            isinstance(rule, (int, float))
            and not isinstance(rule, bool)
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and float(rule) == float(value)
        )
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "suffix" in rule:
        return isinstance(value, str) and value.endswith(rule["suffix"])
    if "wildcard" in rule:
        return isinstance(value, str) and fnmatch.fnmatchcase(value, rule["wildcard"])
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        if isinstance(excluded, Mapping):
            return not _one(excluded, value)
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return all(not _one(e, value) for e in excluded)
    if "numeric" in rule:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        terms = rule["numeric"]
        return all(_NUMERIC[terms[i]](value, terms[i + 1]) for i in range(0, len(terms) - 1, 2))
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    raise ValueError(f"unsupported event pattern matcher {dict(rule)!r}")
