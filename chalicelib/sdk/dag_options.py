"""DAG arguments Airflow DAG files pass that need checking before they are kept.

Kept apart from ``sdk/dag.py`` because each is a small rule of its own: the
Airflow 2 spelling ``schedule_interval``, the Jinja settings the worker's
template environment reads (``runtime/templating.py``), and Airflow 2's SLA
arguments, which are refused rather than silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

UNSET: Any = object()
"""Marks an argument the caller did not pass (None is a meaningful schedule)."""

SLA_MESSAGE = (
    "{what} is Airflow 2's SLA, which Airflow 3 removed and Slipstream does not support: "
    "use a deadline alert instead (Airflow 3's replacement for SLAs), e.g. "
    "DAG(deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE, "
    "interval=timedelta(hours=1), callback=SyncCallback(notify))) "
    "from airflow.sdk.definitions.deadline (see docs/porting.md)"
)

Record = Callable[[str], None]


def choose_schedule(schedule: Any, schedule_interval: Any, record: Record) -> Any:
    """``schedule_interval`` is Airflow 2's name for ``schedule``; passing both is an error."""
    if schedule_interval is UNSET:
        return None if schedule is UNSET else schedule
    if schedule is not UNSET:
        record(
            "pass either schedule= or schedule_interval= (its Airflow 2 name), not both: "
            f"got schedule={schedule!r} and schedule_interval={schedule_interval!r}"
        )
        return schedule
    return schedule_interval


def mapping_of(name: str, value: Any, record: Record, *, callables: bool = False) -> dict[str, Any]:
    """``user_defined_macros`` / ``user_defined_filters``: a dict keyed by names."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        record(f"{name} must be a dict of names to values, got {type(value).__name__}")
        return {}
    if callables:
        bad = sorted(k for k, v in value.items() if not callable(v))
        if bad:
            record(f"{name} must map names to callables; not callable: {', '.join(bad)}")
            return {k: v for k, v in value.items() if callable(v)}
    return dict(value)


def search_path(value: Any, record: Record) -> list[str]:
    """``template_searchpath``: one folder or a list of folders, as Airflow accepts."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, Iterable) and all(isinstance(p, (str, os.PathLike)) for p in value):
        return [os.fspath(p) for p in value]
    record(f"template_searchpath must be a folder or a list of folders, got {value!r}")
    return []


def flag(name: str, value: Any, record: Record, default: bool | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return default if value is None else value
    record(f"{name} must be True or False, got {value!r}")
    return default


def refuse_sla(arguments: Mapping[str, Any], record: Record) -> None:
    """Airflow 2's ``sla_miss_callback`` on a DAG, or ``sla`` in its default_args."""
    if arguments.get("sla_miss_callback") is not None:
        record(SLA_MESSAGE.format(what="sla_miss_callback"))
    default_args = arguments.get("default_args") or {}
    if isinstance(default_args, Mapping) and default_args.get("sla") is not None:
        record(SLA_MESSAGE.format(what="default_args['sla']"))
