"""JSON-schema ``format`` checks for params, as Airflow's Param applies them.

Airflow validates a param with ``jsonschema.validate(..., format_checker=
FormatChecker())``. A FormatChecker checks only the formats whose helper
packages are installed; with Airflow's dependencies (rfc3339-validator, idna)
that is the list below. Every other format (``uri``, ``duration``,
``hostname``, ...) has no checker there and accepts any value, so here too.
The checks are the same rules re-stated with the standard library so the core
stays free of optional packages; tests/core/test_param_formats.py holds them
against jsonschema's own checker. A format applies to strings only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Callable

# RFC 3339 date-time, as rfc3339-validator reads it (after upper-casing).
_DATE_TIME = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_UUID_DASHES = (8, 13, 18, 23)


def _date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _date_time(text: str) -> bool:
    match = _DATE_TIME.match(text.upper())
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _time(text: str) -> bool:
    # FormatChecker() without a draft keeps jsonschema's draft 3 "time": %H:%M:%S.
    try:
        dt.datetime.strptime(text, "%H:%M:%S")
    except ValueError:
        return False
    return True


def _email(text: str) -> bool:
    return "@" in text


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> bool:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not address.scope_id


def _uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return all(len(text) > i and text[i] == "-" for i in _UUID_DASHES)


def _regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


CHECKED_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _date,
    "date-time": _date_time,
    "time": _time,
    "email": _email,
    "idn-email": _email,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "uuid": _uuid,
    "regex": _regex,
}


def conforms(value: object, format_name: str) -> bool:
    """Whether ``value`` fits ``format_name``; formats without a checker accept anything."""
    check = CHECKED_FORMATS.get(format_name)
    if check is None or not isinstance(value, str):
        return True
    return check(value)
