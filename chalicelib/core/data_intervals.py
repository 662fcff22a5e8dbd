"""What a scheduled run covers: data intervals, run info and the DAG's time window.

Plain values shared by every timetable, kept apart so the scheduler and the API
can use them without the timetable machinery. Every datetime is aware UTC;
naive ones passed in are taken as UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

UTC = dt.timezone.utc


@dataclass(frozen=True, slots=True)
class DataInterval:
    """The span of data one run is responsible for; ``end`` is exclusive."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def exact(cls, at: dt.datetime) -> DataInterval:
        """A zero-width interval: runs that are not about a period of data."""
        return cls(at, at)


@dataclass(frozen=True, slots=True)
class DagRunInfo:
    """One run a timetable asks for: not before ``run_after``, covering ``data_interval``.

    ``logical_date`` is always the interval start, as in Airflow 2
    (``DagRunInfo.logical_date``); manual runs build their own record instead.
    """

    run_after: dt.datetime
    data_interval: DataInterval
    logical_date: dt.datetime

    @classmethod
    def exact(cls, at: dt.datetime) -> DagRunInfo:
        return cls(run_after=at, data_interval=DataInterval.exact(at), logical_date=at)

    @classmethod
    def interval(cls, start: dt.datetime, end: dt.datetime) -> DagRunInfo:
        """A run scheduled as soon as its interval has ended."""
        return cls(run_after=end, data_interval=DataInterval(start, end), logical_date=start)


@dataclass(frozen=True, slots=True)
class TimeRestriction:
    """The DAG's window: ``earliest`` is start_date, ``latest`` end_date (inclusive)."""

    earliest: dt.datetime | None
    latest: dt.datetime | None
    catchup: bool

    def __post_init__(self) -> None:
        # Normalised once here so every comparison below is between UTC instants.
        if self.earliest is not None:
            object.__setattr__(self, "earliest", as_utc(self.earliest))
        if self.latest is not None:
            object.__setattr__(self, "latest", as_utc(self.latest))


def as_utc(value: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive value is taken to be UTC already.

    Subclasses (pendulum's DateTime) come back as plain datetimes so results
    compare, hash and serialise the same whatever the DAG file used.
    """
    if type(value) is not dt.datetime:
        value = dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, tzinfo=value.tzinfo, fold=value.fold,
        )  # fmt: skip
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)
