"""The timetable contract and the schedules that are not periodic: ``None``
(manual only), ``@once`` and ``@continuous``, as Airflow's timetables.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from chalicelib.core.data_intervals import DagRunInfo, DataInterval, TimeRestriction, as_utc


class TimetableBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    periodic: ClassVar[bool] = True
    """Runs come at regular times (cron, delta), so backfills and catchup make sense."""
    can_be_scheduled: ClassVar[bool] = True
    """The scheduler creates runs by itself; False only for ``schedule=None``."""
    active_runs_limit: ClassVar[int | None] = None
    """A cap on concurrent runs the timetable itself imposes (``@continuous``: 1)."""

    @property
    def summary(self) -> str:
        """Short text for lists of DAGs, as Airflow's ``timetable.summary``."""
        raise NotImplementedError

    @property
    def description(self) -> str:
        """A sentence saying when runs happen."""
        return ""

    def validate(self) -> None:  # type: ignore[override]
        """Raise ScheduleError if this timetable cannot schedule anything sensible.

        Kept apart from construction so a DAG can report every problem at once.
        (Shadows pydantic's deprecated ``BaseModel.validate`` classmethod.)
        """

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        """The next run the scheduler should create after the last scheduled one, or None."""
        raise NotImplementedError

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        """The interval a manually triggered run at ``run_after`` covers."""
        return DataInterval.exact(as_utc(run_after))

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        """Rebuild the data interval of a scheduled run known only by its logical date."""
        return DataInterval.exact(as_utc(logical_date))


class FixedWindow:
    """A run covers a window of one fixed length (``_interval``) that ends when it
    runs: a manual run at ``t`` covers ``[t - interval, t]``, and a scheduled run
    is rebuilt from its logical date, the window's start."""

    @property
    def _interval(self) -> dt.timedelta:
        raise NotImplementedError

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        end = as_utc(run_after)
        return DataInterval(end - self._interval, end)

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        start = as_utc(logical_date)
        return DataInterval(start, start + self._interval)


class TriggerWindow(FixedWindow):
    """What the trigger timetables (cron and delta) share: a run fired at ``t``
    covers ``[t - interval, t]``, so its logical date is that window's start."""

    def _run_firing_at(self, fire: dt.datetime, restriction: TimeRestriction) -> DagRunInfo | None:
        if restriction.latest is not None and restriction.latest < fire:
            return None
        return DagRunInfo.interval(fire - self._interval, fire)


class NullTimetable(TimetableBase):
    """``schedule=None``: runs only when triggered."""

    type: Literal["none"] = "none"

    periodic: ClassVar[bool] = False
    can_be_scheduled: ClassVar[bool] = False

    @property
    def summary(self) -> str:
        return "None"

    @property
    def description(self) -> str:
        return "Never, external triggers only"

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        return None


class OnceTimetable(TimetableBase):
    """``@once``: a single run at start_date."""

    type: Literal["once"] = "once"

    periodic: ClassVar[bool] = False

    @property
    def summary(self) -> str:
        return "@once"

    @property
    def description(self) -> str:
        return "Once, as soon as possible"

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        # At start_date whatever catchup says, and never without a start_date (as Airflow).
        if last_automated_data_interval is not None or restriction.earliest is None:
            return None
        run_after = restriction.earliest
        if restriction.latest is not None and run_after > restriction.latest:
            return None
        return DagRunInfo.exact(run_after)


class ContinuousTimetable(TimetableBase):
    """``@continuous``: a new run as soon as the previous one ends."""

    type: Literal["continuous"] = "continuous"

    periodic: ClassVar[bool] = False
    active_runs_limit: ClassVar[int | None] = 1

    @property
    def summary(self) -> str:
        return "@continuous"

    @property
    def description(self) -> str:
        return "As frequently as possible, but only one run at a time."

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        if restriction.earliest is None:
            return None
        current = as_utc(now)
        last = last_automated_data_interval
        if last is None:
            start, end = restriction.earliest, max(restriction.earliest, current)
        elif as_utc(last.end) > current:
            # The last run lies in the future (start_date moved): restart from
            # start_date with an interval as long as the last one.
            start = restriction.earliest
            end = start + (as_utc(last.end) - as_utc(last.start))
        else:
            start, end = as_utc(last.end), current
        if restriction.latest is not None and end > restriction.latest:
            return None
        return DagRunInfo.interval(start, end)
