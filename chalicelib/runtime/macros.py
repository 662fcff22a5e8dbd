"""The ``macros`` object templates see: Airflow's names with Airflow's behaviour.

This module itself is put in the context under ``macros`` (as Airflow puts
``airflow.macros``), so ``{{ macros.ds_add(ds, 1) }}``, ``macros.datetime``,
``macros.timedelta``, ``macros.time`` (the time module, as Airflow's code has
it), ``macros.uuid``, ``macros.random`` (``random.random``), ``macros.json`` and
``macros.dateutil`` all resolve the way DAGs moved from Airflow expect.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from random import random

import dateutil  # type: ignore[import-untyped]
import dateutil.parser  # type: ignore[import-untyped]
import dateutil.relativedelta  # type: ignore[import-untyped]
import dateutil.tz  # type: ignore[import-untyped]
import pendulum

__all__ = [
    "datetime",
    "datetime_diff_for_humans",
    "dateutil",
    "ds_add",
    "ds_format",
    "json",
    "random",
    "time",
    "timedelta",
    "uuid",
]


def ds_add(ds: str, days: int) -> str:
    """``ds`` (YYYY-MM-DD) moved by ``days``; negative days go back."""
    if not days:
        return str(ds)
    moved = datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)
    return moved.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Re-format a date string: ``ds_format("2024-01-05", "%Y-%m-%d", "%d/%m/%Y")``."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: datetime, since: datetime | None = None) -> str:
    """``"2 hours ago"``-style distance between ``dt`` and ``since`` (default: now)."""
    then = pendulum.instance(dt)
    return then.diff_for_humans(None if since is None else pendulum.instance(since))
