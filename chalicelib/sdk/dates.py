"""``days_ago``: Airflow 2's start-date helper, kept so old DAG files load unchanged.

Airflow deprecated it (a start date that moves every day makes a DAG's first
run hard to predict) and Airflow 3 removed it; it is here only so files that
still call it keep working. Prefer a fixed ``pendulum.datetime(...)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def days_ago(
    n: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
    *,
    now: Callable[[], dt.datetime] = _utc_now,
) -> dt.datetime:
    """Today at ``hour:minute:second`` UTC, ``n`` days back (as Airflow computed it)."""
    today = (
        now()
        .astimezone(dt.UTC)
        .replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    )
    return today - dt.timedelta(days=n)


def utc_datetime(*args: Any, **kwargs: Any) -> dt.datetime:
    """Airflow's ``timezone.datetime``: a ``datetime`` that is UTC unless given a tzinfo.

    Old DAG files write ``start_date=timezone.datetime(2024, 1, 1)`` to get an
    aware date without importing pendulum.
    """
    kwargs.setdefault("tzinfo", dt.UTC)
    return dt.datetime(*args, **kwargs)


def utcnow() -> dt.datetime:
    """Airflow's ``timezone.utcnow``: now, aware, in UTC."""
    return _utc_now()
