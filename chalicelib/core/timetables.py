"""Schedules as Airflow timetables: when runs are due and what interval each covers.

The behaviour follows Apache Airflow (``airflow/timetables``) because users
bring DAGs and expectations from there. As in Airflow 3 a cron string or a
timedelta becomes a trigger timetable (a run at each tick, logical date = the
tick); Airflow 2's data intervals (``[previous tick, tick)``, run after the
interval ends, logical date = start, ``catchup=False`` jumps to the latest
complete interval) stay available behind the deployment's settings. Cron is
evaluated on the DAG's wall clock and then placed on the UTC line the way
Airflow does it.

Everything here is pure: the current time is always a parameter, never read
from a clock, so the scheduler, the CLI and the tests all get the same answer
for the same inputs. Every datetime returned is timezone-aware UTC; naive
datetimes passed in are taken as UTC.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Annotated, Any

from pydantic import Field

from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.data_intervals import DagRunInfo, DataInterval, TimeRestriction, as_utc
from chalicelib.core.delta_timetables import DeltaDataIntervalTimetable, DeltaTriggerTimetable
from chalicelib.core.errors import ScheduleError
from chalicelib.core.ticks import microseconds
from chalicelib.core.timetable_base import (
    ContinuousTimetable,
    NullTimetable,
    OnceTimetable,
    TimetableBase,
)
from chalicelib.core.timezones import localize, resolve_timezone

Timetable = Annotated[
    NullTimetable
    | OnceTimetable
    | ContinuousTimetable
    | CronDataIntervalTimetable
    | CronTriggerTimetable
    | DeltaDataIntervalTimetable
    | DeltaTriggerTimetable,
    Field(discriminator="type"),
]

AnyTimetable = (
    NullTimetable
    | OnceTimetable
    | ContinuousTimetable
    | CronDataIntervalTimetable
    | CronTriggerTimetable
    | DeltaDataIntervalTimetable
    | DeltaTriggerTimetable
)
"""The same union without the pydantic discriminator, for isinstance and type hints."""

_ZONED = (CronDataIntervalTimetable, CronTriggerTimetable)


# --------------------------------------------------------------------------- building


def timetable_from_schedule(
    schedule: Any,
    timezone: str = "UTC",
    *,
    cron_data_intervals: bool = False,
    delta_data_intervals: bool = False,
) -> AnyTimetable:
    """Turn a DAG's ``schedule=`` value into a validated timetable, as Airflow 3's
    ``_create_timetable`` does; ``timezone`` is the DAG's and applies to crons.

    As in Airflow 3 a cron string, a preset or a timedelta becomes a trigger
    timetable (a run at each tick, logical date = the tick) unless the
    deployment asks for Airflow 2's data intervals with ``cron_data_intervals``
    (``[scheduler] create_cron_data_intervals``) or ``delta_data_intervals``
    (``create_delta_data_intervals``). Timetable objects are kept as they are.

    Raises ScheduleError naming the value when it cannot be a schedule.
    """
    resolve_timezone(timezone)
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, TimetableBase):
        return _with_dag_timezone(schedule, timezone)
    if isinstance(schedule, str):
        text = " ".join(schedule.split())
        lowered = text.lower()
        if lowered == "@once":
            return OnceTimetable()
        if lowered == "@continuous":
            return ContinuousTimetable()
        if not text:
            raise ScheduleError("schedule is an empty string: use None for no schedule")
        cron: CronDataIntervalTimetable | CronTriggerTimetable
        if cron_data_intervals:
            cron = CronDataIntervalTimetable(expression=text, timezone=timezone)
        else:
            cron = CronTriggerTimetable(expression=text, timezone=timezone)
        cron.validate()
        return cron
    seconds = (
        schedule.total_seconds()
        if isinstance(schedule, dt.timedelta)
        else _relativedelta_seconds(schedule)
    )
    if seconds is not None:
        delta: DeltaDataIntervalTimetable | DeltaTriggerTimetable
        if delta_data_intervals:
            delta = DeltaDataIntervalTimetable(seconds=seconds)
        else:
            delta = DeltaTriggerTimetable(seconds)
        _validate_naming(delta, schedule)
        return delta
    raise ScheduleError(
        f"schedule {schedule!r} is not a valid schedule: use None, '@once', '@continuous', "
        "a preset such as '@daily', a cron string, a timedelta or a timetable"
    )


def _with_dag_timezone(timetable: TimetableBase, timezone: str) -> AnyTimetable:
    """A timetable built without a timezone follows its DAG's, as Airflow's default does."""
    if isinstance(timetable, _ZONED) and "timezone" not in timetable.model_fields_set:
        data = timetable.model_dump()
        data["timezone"] = timezone
        timetable = type(timetable).model_validate(data)
    timetable.validate()
    return timetable  # type: ignore[return-value]


def _validate_naming(timetable: TimetableBase, schedule: Any) -> None:
    try:
        timetable.validate()
    except ScheduleError as exc:
        raise ScheduleError(f"schedule {schedule!r}: {exc}") from None


def _relativedelta_seconds(value: Any) -> float | None:
    """Seconds of a relativedelta that is a fixed duration; None if not a relativedelta.

    Months, years and absolute fields (``day=1``) vary in length, which a
    seconds-based timetable cannot express, so they are refused.
    """
    try:
        relativedelta = importlib.import_module("dateutil.relativedelta").relativedelta
    except ImportError:  # pragma: no cover - dateutil ships with croniter
        return None
    if not isinstance(value, relativedelta):
        return None
    absolute = (
        value.year, value.month, value.day, value.weekday,
        value.hour, value.minute, value.second, value.microsecond,
    )  # fmt: skip
    if value.years or value.months or value.leapdays or any(a is not None for a in absolute):
        raise ScheduleError(
            f"schedule {value!r}: only relativedeltas of fixed length (days, hours, minutes, "
            "seconds) are supported; use a cron string such as '@monthly' instead"
        )
    fixed = dt.timedelta(
        days=value.days,
        hours=value.hours,
        minutes=value.minutes,
        seconds=value.seconds,
        microseconds=value.microseconds,
    )
    return fixed.total_seconds()


# --------------------------------------------------------------------------- scheduler views


def time_restriction(
    timetable: TimetableBase,
    start_date: dt.datetime | None,
    end_date: dt.datetime | None,
    catchup: bool,
    *,
    timezone: str | None = None,
) -> TimeRestriction:
    """The DAG's window as the timetable sees it.

    A naive start/end date is wall-clock time in the DAG's ``timezone``, as in
    Airflow; without one, the timetable's own timezone (UTC for non-cron ones).
    """
    if timezone is None:
        timezone = timetable.timezone if isinstance(timetable, _ZONED) else "UTC"
    zone = resolve_timezone(timezone)
    return TimeRestriction(_dag_date(start_date, zone), _dag_date(end_date, zone), catchup)


def _dag_date(value: dt.datetime | None, zone: dt.tzinfo) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return localize(value, zone)


def interval_for_logical_date(timetable: TimetableBase, logical_date: dt.datetime) -> DataInterval:
    """The data interval of the scheduled run with this logical date (Airflow's
    ``infer_automated_data_interval``), so callers that only kept the logical
    date can ask what comes next."""
    return timetable.interval_for_logical_date(logical_date)


def due_runs(
    timetable: TimetableBase,
    *,
    start_date: dt.datetime | None,
    end_date: dt.datetime | None,
    catchup: bool,
    last_automated_data_interval: DataInterval | None,
    now: dt.datetime,
    limit: int | None = None,
    timezone: str | None = None,
) -> list[DagRunInfo]:
    """The runs a scheduler looking at ``now`` would create, oldest first.

    ``timezone`` is the DAG's, for naive start/end dates (see time_restriction).
    Only runs whose ``run_after`` has come are due. With ``catchup=False`` the
    timetable itself jumps to the latest interval, so at most one run comes
    back; ``@once`` and ``@continuous`` give at most one at a time.
    """
    restriction = time_restriction(timetable, start_date, end_date, catchup, timezone=timezone)
    current = as_utc(now)
    last = last_automated_data_interval
    runs: list[DagRunInfo] = []
    while limit is None or len(runs) < limit:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=current
        )
        if info is None or info.run_after > current:
            break
        if runs and info.run_after <= runs[-1].run_after:
            break  # no progress: never loop on a timetable that repeats itself
        runs.append(info)
        if not timetable.periodic:
            break
        last = info.data_interval
    return runs


def next_runs(
    timetable: TimetableBase,
    *,
    start_date: dt.datetime | None,
    end_date: dt.datetime | None,
    after: dt.datetime,
    count: int,
    timezone: str | None = None,
) -> list[DagRunInfo]:
    """The next ``count`` scheduled runs with ``run_after`` later than ``after``.

    ``timezone`` is the DAG's, for naive start/end dates (see time_restriction).
    Catchup is ignored: this answers "what will run next", as if every earlier
    run had happened. ``@continuous`` has no timetable of its own, so its one
    answer is the run that would start at ``after`` (or at start_date).
    """
    if count <= 0:
        return []
    restriction = time_restriction(timetable, start_date, end_date, catchup=True, timezone=timezone)
    cutoff = as_utc(after)
    if isinstance(timetable, ContinuousTimetable):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction, now=cutoff
        )
        return [info] if info is not None else []

    first = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction, now=cutoff
    )
    if first is None:
        return []
    runs: list[DagRunInfo] = []
    if first.run_after > cutoff:
        runs.append(first)
        last: DataInterval | None = first.data_interval
    else:
        last = _interval_ending_by(timetable, restriction, cutoff)
    while len(runs) < count:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=cutoff
        )
        if info is None or info.data_interval == last:
            break
        if info.run_after > cutoff:
            if runs and info.run_after <= runs[-1].run_after:
                break  # no progress: never loop on a timetable that repeats itself
            runs.append(info)
        last = info.data_interval
    return runs


def _interval_ending_by(
    timetable: TimetableBase, restriction: TimeRestriction, cutoff: dt.datetime
) -> DataInterval | None:
    """A stand-in for "the last run that happened by ``cutoff``", so the timetable's
    own next_dagrun_info yields the first run after it without walking from start_date."""
    if isinstance(timetable, (CronDataIntervalTimetable, CronTriggerTimetable)):
        end = timetable._ticks.align_to_prev(cutoff)
        return DataInterval(end, end)
    if isinstance(timetable, DeltaDataIntervalTimetable) and restriction.earliest is not None:
        step = microseconds(timetable.delta)
        elapsed = microseconds(cutoff - restriction.earliest)
        end = restriction.earliest + dt.timedelta(microseconds=elapsed - elapsed % step)
        return DataInterval(end - timetable.delta, end)
    if isinstance(timetable, DeltaTriggerTimetable) and restriction.earliest is not None:
        fired = timetable._latest_on_grid(restriction.earliest, cutoff)
        return DataInterval(fired - timetable._interval, fired)
    # @once already ran by the cutoff: nothing follows.
    return DataInterval(cutoff, cutoff)
