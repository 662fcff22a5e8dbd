"""Tick arithmetic shared by the data-interval timetables: fixed-delta ticks and
Airflow's ``next_dagrun_info`` over either kind of tick (cron or delta).
"""

from __future__ import annotations

import datetime as dt

from chalicelib.core.cron import CronTicks
from chalicelib.core.data_intervals import UTC, DagRunInfo, DataInterval, TimeRestriction, as_utc


class DeltaTicks:
    """Ticks every fixed number of seconds of absolute time, anchored on start_date."""

    __slots__ = ("_delta",)

    def __init__(self, seconds: float) -> None:
        self._delta = dt.timedelta(seconds=seconds)

    def next(self, current: dt.datetime) -> dt.datetime:
        return as_utc(current) + self._delta

    def prev(self, current: dt.datetime) -> dt.datetime:
        return as_utc(current) - self._delta

    def align_to_next(self, current: dt.datetime) -> dt.datetime:
        return current

    def align_to_prev(self, current: dt.datetime) -> dt.datetime:
        return current

    def skip_to_latest(self, earliest: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        """Airflow rounds ``now`` down to a multiple of the delta since the epoch,
        then steps back one delta: the anchor is the epoch here, not start_date."""
        step = microseconds(self._delta)
        since_epoch = microseconds(as_utc(now) - _EPOCH)
        rounded = _EPOCH + dt.timedelta(microseconds=since_epoch - since_epoch % step)
        new_start = rounded - self._delta
        if earliest is None:
            return new_start
        return max(new_start, earliest)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def microseconds(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


Ticks = CronTicks | DeltaTicks


def next_data_interval(
    ticks: Ticks,
    last: DataInterval | None,
    restriction: TimeRestriction,
    now: dt.datetime,
) -> DagRunInfo | None:
    """Airflow's ``_DataIntervalTimetable.next_dagrun_info`` over either kind of tick."""
    earliest = restriction.earliest
    if not restriction.catchup:
        earliest = ticks.skip_to_latest(earliest, as_utc(now))
    elif earliest is not None:
        earliest = ticks.align_to_next(earliest)
    if last is None:
        if earliest is None:
            return None
        start = earliest
    else:
        # Re-aligning the previous end keeps a DAG whose schedule changed on its new ticks.
        previous_end = ticks.align_to_prev(as_utc(last.end))
        start = previous_end if earliest is None else max(previous_end, earliest)
    start = as_utc(start)
    if restriction.latest is not None and start > restriction.latest:
        return None
    return DagRunInfo.interval(start, ticks.next(start))
