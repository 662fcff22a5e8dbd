"""Cron schedules as timetables: Airflow 2's data intervals and Airflow 3's
trigger semantics, both evaluated on the DAG's wall clock.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cached_property
from typing import Any, Literal

from pydantic import field_validator

from chalicelib.core.cron import CronTicks, check_cron, describe_cron, normalize_cron
from chalicelib.core.data_intervals import DagRunInfo, DataInterval, TimeRestriction, as_utc
from chalicelib.core.errors import ScheduleError
from chalicelib.core.ticks import next_data_interval
from chalicelib.core.timetable_base import TimetableBase, TriggerWindow
from chalicelib.core.timezones import resolve_timezone


def _normalize_expression(value: Any) -> Any:
    return normalize_cron(value) if isinstance(value, str) else value


class _CronSchedule(TimetableBase):
    """What both cron timetables share: the expression (presets expanded, given
    positionally or by name), its time zone, and the ticks they walk."""

    expression: str
    timezone: str = "UTC"

    def __init__(self, expression: str | None = None, /, **data: Any) -> None:
        if expression is not None:
            data["expression"] = expression
        super().__init__(**data)

    _expand_presets = field_validator("expression", mode="before")(_normalize_expression)

    @cached_property
    def _ticks(self) -> CronTicks:
        self.validate()  # once per instance; a clear message beats croniter's
        return CronTicks(self.expression, resolve_timezone(self.timezone))

    @property
    def summary(self) -> str:
        return self.expression

    @property
    def description(self) -> str:
        return describe_cron(self.expression)


class CronDataIntervalTimetable(_CronSchedule):
    """A cron string or preset: each run covers [previous tick, tick) and runs at the tick.

    ``expression`` is stored with presets expanded (``@daily`` -> ``0 0 * * *``),
    as Airflow's timetable summary shows it.
    """

    type: Literal["cron"] = "cron"

    def validate(self) -> None:  # type: ignore[override]
        resolve_timezone(self.timezone)
        check_cron(self.expression)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        return next_data_interval(self._ticks, last_automated_data_interval, restriction, now)

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        """The last complete interval: a manual run at 01:00 on the 25th of a
        midnight-daily DAG covers 00:00 24th to 00:00 25th."""
        end = self._ticks.align_to_prev(as_utc(run_after))
        return DataInterval(self._ticks.prev(end), end)

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        start = as_utc(logical_date)
        return DataInterval(start, self._ticks.next(start))


class CronTriggerTimetable(TriggerWindow, _CronSchedule):
    """Cron with trigger semantics: a run fires at each tick, not after an interval.

    The run's interval is ``[tick - interval_seconds, tick]`` and, as in Airflow
    2, its logical date is that interval's start, which is the tick itself with
    the default ``interval_seconds=0``.
    """

    type: Literal["cron_trigger"] = "cron_trigger"
    interval_seconds: float = 0.0

    @property
    def _interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.interval_seconds)

    def validate(self) -> None:  # type: ignore[override]
        resolve_timezone(self.timezone)
        check_cron(self.expression)
        if not math.isfinite(self.interval_seconds) or self.interval_seconds < 0:
            raise ScheduleError(
                f"CronTriggerTimetable interval must be zero or positive seconds, "
                f"got {self.interval_seconds!r}"
            )

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        ticks = self._ticks
        last = last_automated_data_interval
        if restriction.catchup:
            if last is not None:
                tick = ticks.next(as_utc(last.end))
            elif restriction.earliest is None:
                return None  # nowhere to catch up from
            else:
                tick = ticks.align_to_next(restriction.earliest)
        else:
            # Without catchup the most recent tick still runs, even if it passed
            # a moment ago (Airflow 2's default, before catchup_false_..._fix).
            candidates = [ticks.align_to_prev(as_utc(now))]
            if last is not None:
                candidates.append(ticks.next(as_utc(last.end)))
            if restriction.earliest is not None:
                candidates.append(ticks.align_to_next(restriction.earliest))
            tick = max(candidates)
        return self._run_firing_at(as_utc(tick), restriction)
