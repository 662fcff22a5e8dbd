"""A try's rendered template fields, as recorded with its outcome and answered as
``rendered_fields`` by the task-instance API (Airflow 3 keeps them in its
``rendered_task_instance_fields`` table; here they are one attribute of the
instance's item, so they cost no extra read and go with the try's outcome write).

What is kept is what a person may see: every registered secret (connection
passwords, sensitive variables the try read) and every value under a sensitive
name (``password``, ``token``...) is ``***``, as in the try's log. It is bounded:
a field's text longer than Airflow's default ``max_templated_field_length``
(4096) is cut with Airflow's notice, and fields past a total of 8 KB are replaced
by a notice, so an instance's item stays small (DynamoDB bills writes per KB).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.secrets import secret_masker

MAX_FIELD_CHARS = 4096
MAX_TOTAL_CHARS = 8192
TRUNCATED = "Truncated. You can change this behaviour in [core]max_templated_field_length. "
OVER_TOTAL = "Not kept: the task's rendered fields exceed 8 KB in all"
_DEPTH = 20


def _plain(value: Any, name: str | None, depth: int = 0) -> Any:
    """``value`` as JSON-able data with its secrets masked (strings of other
    objects, as Airflow shows a templated object it cannot serialize)."""
    if secret_masker.is_sensitive_name(name) and value not in (None, "", {}, []):
        return secret_masker.REDACTED
    if depth > _DEPTH:
        return secret_masker.mask(repr(value))
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return secret_masker.mask(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_plain(v, None, depth + 1) for v in items]
    return secret_masker.mask(str(value))


def _bounded(value: Any) -> Any:
    """A field's value, or Airflow's truncation notice with the start of its text."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= MAX_FIELD_CHARS:
        return value
    return TRUNCATED + text[: MAX_FIELD_CHARS - len(TRUNCATED)]


def rendered_fields_json(operator: Any) -> str | None:
    """The operator's template fields after rendering, as JSON text to store
    (None when it has none)."""
    names = tuple(getattr(operator, "template_fields", ()) or ())
    if not names:
        return None
    fields: dict[str, Any] = {}
    used = 2
    for name in names:
        value = _bounded(_plain(getattr(operator, name, None), name))
        size = len(json.dumps(value, default=str)) + len(name) + 6
        if used + size > MAX_TOTAL_CHARS:
            value = OVER_TOTAL
            size = len(OVER_TOTAL) + len(name) + 6
        used += size
        fields[name] = value
    return json.dumps(fields, default=str)


def rendered_fields_of(text: str | None) -> dict[str, Any]:
    """The stored text back as the API's ``rendered_fields`` ({} when none was kept)."""
    if not text:
        return {}
    try:
        decoded = json.loads(text)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
