"""Time zones for schedules: names (IANA or fixed offsets) resolved once, and wall
clock <-> UTC conversions that behave as Airflow's across DST gaps and folds.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.core.data_intervals import UTC, as_utc
from chalicelib.core.errors import ScheduleError

_FIXED_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


@lru_cache(maxsize=512)
def resolve_timezone(name: str) -> dt.tzinfo:
    """An IANA zone name (or ``UTC``, or a fixed offset like ``+05:30``) as a tzinfo."""
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"timezone must be a non-empty IANA name such as 'UTC', got {name!r}")
    key = name.strip()
    if key.upper() in ("UTC", "Z"):
        return UTC
    offset = _FIXED_OFFSET.match(key)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta >= dt.timedelta(hours=24):
            raise ScheduleError(f"timezone offset {name!r} is out of range")
        return dt.timezone(-delta if sign == "-" else delta, key)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def localize(naive: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Wall-clock time in ``tz`` to UTC, resolving DST the way Airflow does.

    Airflow's ``make_aware`` sets ``fold=1`` and lets pendulum normalise: a time
    inside a spring-forward gap moves forward by the gap (02:30 -> 03:30), and
    an ambiguous fall-back time takes its second occurrence. Both amount to
    subtracting the smaller of the two candidate offsets.
    """
    first = tz.utcoffset(naive.replace(fold=0))
    second = tz.utcoffset(naive.replace(fold=1))
    if first is None or second is None:  # pragma: no cover - no tzdata zone does this
        raise ScheduleError(f"timezone {tz!r} has no UTC offset for {naive.isoformat()}")
    return (naive.replace(fold=0, tzinfo=None) - min(first, second)).replace(tzinfo=UTC)


def wall_clock(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The naive wall-clock reading of an instant in ``tz`` (Airflow's ``make_naive``)."""
    return as_utc(value).astimezone(tz).replace(tzinfo=None, fold=0)
