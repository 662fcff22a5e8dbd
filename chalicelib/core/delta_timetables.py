"""Timedelta schedules as timetables: Airflow 2's data intervals and Airflow 3's
trigger semantics, both counted in absolute time from start_date.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cached_property
from typing import Any, Literal

from chalicelib.core.data_intervals import DagRunInfo, DataInterval, TimeRestriction, as_utc
from chalicelib.core.errors import ScheduleError
from chalicelib.core.ticks import DeltaTicks, microseconds, next_data_interval
from chalicelib.core.timetable_base import FixedWindow, TimetableBase, TriggerWindow


class _EveryDelta(TimetableBase):
    """What both timedelta schedules share: the interval in seconds, given as a
    number or a ``timedelta``, and how it is shown and checked."""

    seconds: float

    def __init__(self, seconds: float | dt.timedelta | None = None, /, **data: Any) -> None:
        if isinstance(seconds, dt.timedelta):
            seconds = seconds.total_seconds()
        if seconds is not None:
            data["seconds"] = seconds
        super().__init__(**data)

    @property
    def delta(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds)

    @property
    def summary(self) -> str:
        return str(self.delta)

    @property
    def description(self) -> str:
        return f"Every {self.delta}"

    def validate(self) -> None:  # type: ignore[override]
        if not math.isfinite(self.seconds) or self.seconds <= 0:
            raise ScheduleError(f"schedule interval must be positive, not {self.seconds!r} seconds")
        if self.delta < dt.timedelta(microseconds=1):
            raise ScheduleError(f"schedule interval {self.seconds!r} seconds is below 1 µs")


class DeltaDataIntervalTimetable(FixedWindow, _EveryDelta):
    """A timedelta schedule: each run covers [start, start + delta), counted from start_date
    in absolute time (so a one-day delta drifts an hour on the wall clock across DST)."""

    type: Literal["delta"] = "delta"

    @cached_property
    def _ticks(self) -> DeltaTicks:
        self.validate()
        return DeltaTicks(self.seconds)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        return next_data_interval(self._ticks, last_automated_data_interval, restriction, now)

    @property
    def _interval(self) -> dt.timedelta:
        return self.delta  # a window is one interval long, ending at the run


class DeltaTriggerTimetable(TriggerWindow, _EveryDelta):
    """A timedelta schedule with trigger semantics (Airflow 3's default for a timedelta).

    A run fires every ``seconds`` of absolute time counted from start_date; its
    interval is ``[fire time - interval_seconds, fire time]`` and its logical
    date that interval's start, so the fire time itself by default.
    """

    type: Literal["delta_trigger"] = "delta_trigger"
    interval_seconds: float = 0.0

    def __init__(self, seconds: float | dt.timedelta | None = None, /, **data: Any) -> None:
        interval = data.get("interval_seconds")
        if isinstance(interval, dt.timedelta):
            data["interval_seconds"] = interval.total_seconds()
        super().__init__(seconds, **data)

    @property
    def _interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.interval_seconds)

    def validate(self) -> None:  # type: ignore[override]
        super().validate()
        if not math.isfinite(self.interval_seconds) or self.interval_seconds < 0:
            raise ScheduleError(
                f"DeltaTriggerTimetable interval must be zero or positive seconds, "
                f"got {self.interval_seconds!r}"
            )

    def _latest_on_grid(self, anchor: dt.datetime, now: dt.datetime) -> dt.datetime:
        """The last fire time at or before ``now`` on the grid ``anchor + k * delta``."""
        if now <= anchor:
            return anchor
        step = microseconds(self.delta)
        elapsed = microseconds(now - anchor)
        return anchor + dt.timedelta(microseconds=elapsed - elapsed % step)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        self.validate()
        current = as_utc(now)
        last = last_automated_data_interval
        if restriction.catchup:
            if last is not None:
                fire = as_utc(last.end) + self.delta
            elif restriction.earliest is None:
                return None  # nowhere to catch up from, as CronTriggerTimetable
            else:
                fire = restriction.earliest
        else:
            # Airflow 3 offers "now" itself here; the scheduler's tick is late by up
            # to a minute, so that would push every later run by the tick's delay.
            # Slipstream offers the latest point of the run grid instead (see
            # docs/schedules.md): missed runs are skipped and the grid is kept.
            candidates: list[dt.datetime] = []
            if last is not None:
                following = as_utc(last.end) + self.delta
                candidates += [following, self._latest_on_grid(following, current)]
            if restriction.earliest is not None:
                earliest = restriction.earliest
                candidates += [earliest]
                if last is None:
                    candidates.append(self._latest_on_grid(earliest, current))
            fire = max(candidates) if candidates else current
        return self._run_firing_at(fire, restriction)
