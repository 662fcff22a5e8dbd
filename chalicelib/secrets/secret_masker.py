"""Redaction of secret values in anything a try writes out.

One process-wide set of values, as Airflow's masker: whatever the secrets
lookup hands to DAG code that counts as secret is registered here, and
``mask`` replaces every occurrence with ``***``. A worker runs tries of many
DAGs, so the set only grows for the life of the process; that errs on the
side of hiding.

What counts as secret follows Airflow: a connection's password, any extra
field or variable whose key contains one of ``SENSITIVE_NAMES``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

REDACTED = "***"

SENSITIVE_NAMES = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "token",
        "keyfile_dict",
        "service_account",
    }
)

# Shorter values ("1", "yes", "dev") would turn ordinary log text into
# asterisks and tell a reader more than they hide; Airflow 3 skips them too.
MIN_LENGTH = 5

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def is_sensitive_name(name: str | None) -> bool:
    """Whether a field or variable called ``name`` holds a secret (case-insensitive)."""
    if not name:
        return False
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_NAMES)


def add(value: str) -> None:
    """Register one secret value (and its URL-quoted form, as it appears in URIs)."""
    global _pattern
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        return
    variants = {value, quote(value, safe=""), *value.splitlines()}
    new = {v for v in variants if len(v) >= MIN_LENGTH} - _values
    if not new:
        return
    with _lock:
        _values.update(new)
        _pattern = None


def register(value: Any, name: str | None = None, *, secret: bool = False) -> None:
    """Register what is secret inside ``value``.

    A string is registered if ``secret`` is true or ``name`` is a sensitive
    name; in a dict, a key with a sensitive name makes its whole value secret;
    lists are walked.
    """
    secret = secret or is_sensitive_name(name)
    if isinstance(value, str):
        if secret:
            add(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            register(inner, str(key), secret=secret)
    elif isinstance(value, list | tuple | set):
        for inner in value:
            register(inner, name, secret=secret)
    elif secret and value is not None and not isinstance(value, bool):
        add(str(value))


def register_connection(conn: Any) -> None:
    """A connection's password and its sensitive extra fields."""
    if conn.password:
        add(conn.password)
    register(conn.extra_dejson)


def register_variable(key: str, value: str) -> None:
    """A variable's value if its key is sensitive, and sensitive fields of a JSON value."""
    if is_sensitive_name(key):
        add(value)
        return
    if value.lstrip()[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            register(json.loads(value))


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _values:
            # Longest first, so a secret containing another is hidden whole.
            ordered = sorted(_values, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered))
        return _pattern


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _compiled()
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def registered() -> frozenset[str]:
    """A copy of the set, for tests and diagnostics (never log it)."""
    with _lock:
        return frozenset(_values)


def clear(values: Iterable[str] | None = None) -> None:
    """Forget some or all values: tests start from an empty masker."""
    global _pattern
    with _lock:
        if values is None:
            _values.clear()
        else:
            _values.difference_update(values)
        _pattern = None


class MaskingFilter(logging.Filter):
    """A logging filter that masks a record's message (and its traceback text) in place.

    Attached to the ``slipstream.task`` logger by the runtime, so everything a
    try logs through ``self.log`` / ``ti.log`` passes through it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _compiled() is None:
            return True
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True
