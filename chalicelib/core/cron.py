"""Cron expressions for schedules: Airflow's presets, validation with a clear
message, a readable description, and ticks on a wall clock placed on UTC the
way Airflow's CronMixin does. Iterators and ticks are cached per thread
because the scheduler asks the same crons again on every tick.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading

from croniter import CroniterError, croniter

from chalicelib.core.data_intervals import as_utc
from chalicelib.core.errors import ScheduleError
from chalicelib.core.timezones import localize, wall_clock

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


class CronTicks:
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
