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
import math
import re
import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.core.errors import ScheduleError

UTC = dt.timezone.utc

CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
"""Airflow's presets (airflow.utils.dates.cron_presets), expanded before use."""

# Airflow hands strings it does not know to croniter, which knows these two too.
_CRONITER_ALIASES: dict[str, str] = {"@annually": "0 0 1 1 *", "@midnight": "0 0 * * *"}
_SPECIAL_SCHEDULES = ("@once", "@continuous")


# --------------------------------------------------------------------------- values


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


# --------------------------------------------------------------------------- timezones

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


# --------------------------------------------------------------------------- cron parsing


def normalize_cron(expression: str) -> str:
    """Presets expanded to Airflow's cron, whitespace collapsed; anything else as given."""
    text = " ".join(expression.split())
    lowered = text.lower()
    if lowered in CRON_PRESETS:
        return CRON_PRESETS[lowered]
    if lowered in _CRONITER_ALIASES:
        return _CRONITER_ALIASES[lowered]
    return text


def check_cron(expression: str) -> None:
    """Raise ScheduleError unless ``expression`` is a cron croniter accepts and that fires."""
    if expression.startswith("@"):
        if expression.lower() in _SPECIAL_SCHEDULES:
            raise ScheduleError(
                f"{expression!r} is a schedule of its own, not a cron expression: "
                f"pass schedule={expression!r} to the DAG"
            )
        known = ", ".join([*CRON_PRESETS, *_CRONITER_ALIASES, *_SPECIAL_SCHEDULES])
        raise ScheduleError(f"unknown schedule preset {expression!r} (known presets: {known})")
    try:
        probe = croniter(expression, start_time=_PROBE_START)
    except (CroniterError, ValueError, TypeError, KeyError) as exc:
        raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None
    try:
        probe.get_next(dt.datetime)
    except (CroniterError, ValueError) as exc:
        raise ScheduleError(f"cron expression {expression!r} never fires: {exc}") from None


_PROBE_START = dt.datetime(2000, 1, 1)
_CRON_CACHE_LIMIT = 1024
_TICK_MEMO_LIMIT = 4096
_thread_state = threading.local()


def _cron_iterator(expression: str) -> croniter:
    """A parsed croniter, reused: parsing costs more than the tick arithmetic.

    One cache per thread because a croniter carries its current position.
    """
    cache: dict[str, croniter] | None = getattr(_thread_state, "crons", None)
    if cache is None:
        cache = _thread_state.crons = {}
    iterator = cache.get(expression)
    if iterator is None:
        try:
            iterator = croniter(expression, start_time=_PROBE_START)
        except (CroniterError, ValueError, TypeError, KeyError) as exc:
            raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None
        if len(cache) >= _CRON_CACHE_LIMIT:
            cache.clear()
        cache[expression] = iterator
    return iterator


def describe_cron(expression: str, *, use_24hour_time_format: bool = False) -> str:
    """The cron in words ("At 02:00 AM"), or "" when cron-descriptor cannot say.

    Like Airflow, crons with more than five fields get no description:
    cron-descriptor reads a sixth field as seconds-first, croniter as seconds-last.
    """
    if len(expression.split()) != 5:
        return ""
    try:
        # Imported by name: optional at run time and it ships no type information.
        descriptor = importlib.import_module("cron_descriptor")
    except ImportError:  # pragma: no cover - a runtime without cron-descriptor
        return ""
    options = descriptor.Options()
    options.use_24hour_time_format = use_24hour_time_format
    try:
        return str(descriptor.ExpressionDescriptor(expression, options).get_description())
    except Exception:  # a description is cosmetic; never fail a schedule on it
        return ""


# --------------------------------------------------------------------------- tick arithmetic


class _CronTicks:
    """Ticks of a cron on a wall clock, placed on UTC as Airflow's CronMixin does.

    Airflow runs croniter on naive local time and localises the result, except
    for crons that fire at least every hour: those step by the naive distance
    in absolute time, so the repeated fall-back hour is not skipped.
    """

    __slots__ = ("_every_hour", "_expression", "_memo", "_tz")

    def __init__(self, expression: str, tz: dt.tzinfo) -> None:
        self._expression = expression
        self._tz = tz
        self._every_hour = _cron_iterator(expression).expanded[1] == ["*"]
        # Aligning asks for the same neighbours again and again (prev of a tick,
        # then next of that); croniter costs tens of microseconds per call.
        self._memo: dict[tuple[dt.datetime, bool], dt.datetime] = {}

    def _tick(self, current: dt.datetime, *, forward: bool) -> dt.datetime:
        key = (current, forward)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= _TICK_MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = self._compute_tick(current, forward=forward)
        return found

    def _compute_tick(self, current: dt.datetime, *, forward: bool) -> dt.datetime:
        naive = wall_clock(current, self._tz)
        scheduled = self._croniter_step(naive, forward=forward)
        if self._every_hour:
            return as_utc(current) + (scheduled - naive)
        result = localize(scheduled, self._tz)
        if not forward:
            # A tick inside a spring-forward gap is moved forward by the gap, which can
            # land on or after ``current`` (Airflow's _get_prev then returns a tick
            # that is not before its input, and the latest complete interval of the
            # DST day would be lost). Step further back to a tick that is earlier.
            start = as_utc(current)
            while result >= start:
                scheduled = self._croniter_step(scheduled, forward=False)
                result = localize(scheduled, self._tz)
        return result

    def _croniter_step(self, naive: dt.datetime, *, forward: bool) -> dt.datetime:
        iterator = _cron_iterator(self._expression)
        try:
            if forward:
                found: dt.datetime = iterator.get_next(dt.datetime, start_time=naive)
            else:
                found = iterator.get_prev(dt.datetime, start_time=naive)
        except (CroniterError, ValueError) as exc:
            raise ScheduleError(
                f"cron {self._expression!r} has no tick near {naive.isoformat()}: {exc}"
            ) from None
        return found

    def next(self, current: dt.datetime) -> dt.datetime:
        """The first tick strictly after ``current``."""
        return self._tick(current, forward=True)

    def prev(self, current: dt.datetime) -> dt.datetime:
        """The last tick strictly before ``current``."""
        return self._tick(current, forward=False)

    def align_to_next(self, current: dt.datetime) -> dt.datetime:
        """``current`` if it is a tick, else the next tick."""
        following = self.next(current)
        return following if self.prev(following) != current else current

    def align_to_prev(self, current: dt.datetime) -> dt.datetime:
        """``current`` if it is a tick, else the previous tick."""
        previous = self.prev(current)
        return previous if self.next(previous) != current else current

    def skip_to_latest(self, earliest: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        """Start of the latest interval that is complete at ``now`` (catchup=False).

        When ``now`` is exactly a tick, the interval ending now is complete.
        """
        last_start = self.prev(now)
        next_start = self.next(last_start)
        new_start = last_start if next_start == now else self.prev(last_start)
        if earliest is None:
            return new_start
        return max(new_start, self.align_to_next(earliest))


class _DeltaTicks:
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
        step = _microseconds(self._delta)
        since_epoch = _microseconds(as_utc(now) - _EPOCH)
        rounded = _EPOCH + dt.timedelta(microseconds=since_epoch - since_epoch % step)
        new_start = rounded - self._delta
        if earliest is None:
            return new_start
        return max(new_start, earliest)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_Ticks = _CronTicks | _DeltaTicks


def _next_data_interval(
    ticks: _Ticks,
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


# --------------------------------------------------------------------------- timetables


class _TimetableBase(BaseModel):
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


class NullTimetable(_TimetableBase):
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


class OnceTimetable(_TimetableBase):
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


class ContinuousTimetable(_TimetableBase):
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


def _normalize_expression(value: Any) -> Any:
    return normalize_cron(value) if isinstance(value, str) else value


class CronDataIntervalTimetable(_TimetableBase):
    """A cron string or preset: each run covers [previous tick, tick) and runs at the tick.

    ``expression`` is stored with presets expanded (``@daily`` -> ``0 0 * * *``),
    as Airflow's timetable summary shows it.
    """

    type: Literal["cron"] = "cron"
    expression: str
    timezone: str = "UTC"

    def __init__(self, expression: str | None = None, /, **data: Any) -> None:
        if expression is not None:
            data["expression"] = expression
        super().__init__(**data)

    _expand_presets = field_validator("expression", mode="before")(_normalize_expression)

    @cached_property
    def _ticks(self) -> _CronTicks:
        self.validate()  # once per instance; a clear message beats croniter's
        return _CronTicks(self.expression, resolve_timezone(self.timezone))

    @property
    def summary(self) -> str:
        return self.expression

    @property
    def description(self) -> str:
        return describe_cron(self.expression)

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
        return _next_data_interval(self._ticks, last_automated_data_interval, restriction, now)

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        """The last complete interval: a manual run at 01:00 on the 25th of a
        midnight-daily DAG covers 00:00 24th to 00:00 25th."""
        end = self._ticks.align_to_prev(as_utc(run_after))
        return DataInterval(self._ticks.prev(end), end)

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        start = as_utc(logical_date)
        return DataInterval(start, self._ticks.next(start))


class CronTriggerTimetable(_TimetableBase):
    """Cron with trigger semantics: a run fires at each tick, not after an interval.

    The run's interval is ``[tick - interval_seconds, tick]`` and, as in Airflow
    2, its logical date is that interval's start, which is the tick itself with
    the default ``interval_seconds=0``.
    """

    type: Literal["cron_trigger"] = "cron_trigger"
    expression: str
    timezone: str = "UTC"
    interval_seconds: float = 0.0

    def __init__(self, expression: str | None = None, /, **data: Any) -> None:
        if expression is not None:
            data["expression"] = expression
        super().__init__(**data)

    _expand_presets = field_validator("expression", mode="before")(_normalize_expression)

    @cached_property
    def _ticks(self) -> _CronTicks:
        self.validate()  # once per instance; a clear message beats croniter's
        return _CronTicks(self.expression, resolve_timezone(self.timezone))

    @property
    def _interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.interval_seconds)

    @property
    def summary(self) -> str:
        return self.expression

    @property
    def description(self) -> str:
        return describe_cron(self.expression)

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
        tick = as_utc(tick)
        if restriction.latest is not None and restriction.latest < tick:
            return None
        return DagRunInfo.interval(tick - self._interval, tick)

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        end = as_utc(run_after)
        return DataInterval(end - self._interval, end)

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        start = as_utc(logical_date)
        return DataInterval(start, start + self._interval)


class _EveryDelta(_TimetableBase):
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


class DeltaDataIntervalTimetable(_EveryDelta):
    """A timedelta schedule: each run covers [start, start + delta), counted from start_date
    in absolute time (so a one-day delta drifts an hour on the wall clock across DST)."""

    type: Literal["delta"] = "delta"

    @cached_property
    def _ticks(self) -> _DeltaTicks:
        self.validate()
        return _DeltaTicks(self.seconds)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: dt.datetime,
    ) -> DagRunInfo | None:
        return _next_data_interval(self._ticks, last_automated_data_interval, restriction, now)

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        end = as_utc(run_after)
        return DataInterval(end - self.delta, end)

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        start = as_utc(logical_date)
        return DataInterval(start, start + self.delta)


class DeltaTriggerTimetable(_EveryDelta):
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
        step = _microseconds(self.delta)
        elapsed = _microseconds(now - anchor)
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
        if restriction.latest is not None and restriction.latest < fire:
            return None
        return DagRunInfo.interval(fire - self._interval, fire)

    def infer_manual_data_interval(self, run_after: dt.datetime) -> DataInterval:
        end = as_utc(run_after)
        return DataInterval(end - self._interval, end)

    def interval_for_logical_date(self, logical_date: dt.datetime) -> DataInterval:
        start = as_utc(logical_date)
        return DataInterval(start, start + self._interval)


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
    if isinstance(schedule, _TimetableBase):
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
            cron = CronDataIntervalTimetable(text, timezone=timezone)
        else:
            cron = CronTriggerTimetable(text, timezone=timezone)
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


def _with_dag_timezone(timetable: _TimetableBase, timezone: str) -> AnyTimetable:
    """A timetable built without a timezone follows its DAG's, as Airflow's default does."""
    if isinstance(timetable, _ZONED) and "timezone" not in timetable.model_fields_set:
        data = timetable.model_dump()
        data["timezone"] = timezone
        timetable = type(timetable).model_validate(data)
    timetable.validate()
    return timetable  # type: ignore[return-value]


def _validate_naming(timetable: _TimetableBase, schedule: Any) -> None:
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
    timetable: _TimetableBase,
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


def interval_for_logical_date(timetable: _TimetableBase, logical_date: dt.datetime) -> DataInterval:
    """The data interval of the scheduled run with this logical date (Airflow's
    ``infer_automated_data_interval``), so callers that only kept the logical
    date can ask what comes next."""
    return timetable.interval_for_logical_date(logical_date)


def due_runs(
    timetable: _TimetableBase,
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
    timetable: _TimetableBase,
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
    timetable: _TimetableBase, restriction: TimeRestriction, cutoff: dt.datetime
) -> DataInterval | None:
    """A stand-in for "the last run that happened by ``cutoff``", so the timetable's
    own next_dagrun_info yields the first run after it without walking from start_date."""
    if isinstance(timetable, (CronDataIntervalTimetable, CronTriggerTimetable)):
        end = timetable._ticks.align_to_prev(cutoff)
        return DataInterval(end, end)
    if isinstance(timetable, DeltaDataIntervalTimetable) and restriction.earliest is not None:
        step = _microseconds(timetable.delta)
        elapsed = _microseconds(cutoff - restriction.earliest)
        end = restriction.earliest + dt.timedelta(microseconds=elapsed - elapsed % step)
        return DataInterval(end - timetable.delta, end)
    if isinstance(timetable, DeltaTriggerTimetable) and restriction.earliest is not None:
        fired = timetable._latest_on_grid(restriction.earliest, cutoff)
        return DataInterval(fired - timetable._interval, fired)
    # @once already ran by the cutoff: nothing follows.
    return DataInterval(cutoff, cutoff)
