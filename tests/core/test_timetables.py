"""Schedules behave as Airflow 2's timetables do.

Every expected datetime is written out by hand from Airflow's documented
behaviour (data intervals, catchup, start_date alignment, @once, manual runs)
and from its timetable source; none is recomputed with the code under test.
DST cases live in test_timetables_dst.py.
"""

from __future__ import annotations

import datetime as dt
import re

import pendulum
import pytest
from dateutil.relativedelta import relativedelta

from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.data_intervals import DagRunInfo, DataInterval, TimeRestriction
from chalicelib.core.delta_timetables import DeltaDataIntervalTimetable
from chalicelib.core.errors import ScheduleError
from chalicelib.core.spec import DagSpec
from chalicelib.core.timetable_base import ContinuousTimetable, NullTimetable, OnceTimetable
from chalicelib.core.timetables import (
    due_runs,
    interval_for_logical_date,
    next_runs,
    timetable_from_schedule,
)


def data_interval_timetable(schedule: object, timezone: str = "UTC") -> object:
    """Airflow 2's data intervals, which these tests pin: the deployment settings
    AIRFLOW__SCHEDULER__CREATE_{CRON,DELTA}_DATA_INTERVALS=True."""
    return timetable_from_schedule(
        schedule, timezone, cron_data_intervals=True, delta_data_intervals=True
    )


UTC = dt.timezone.utc


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def intervals(runs: list[DagRunInfo]) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(r.data_interval.start, r.data_interval.end) for r in runs]


def due(
    schedule: object,
    *,
    start: dt.datetime | None,
    now: dt.datetime,
    catchup: bool = True,
    end: dt.datetime | None = None,
    last: DataInterval | None = None,
    timezone: str = "UTC",
    limit: int | None = None,
) -> list[DagRunInfo]:
    return due_runs(
        data_interval_timetable(schedule, timezone),
        start_date=start,
        end_date=end,
        catchup=catchup,
        last_automated_data_interval=last,
        now=now,
        limit=limit,
    )


# --- presets

# start_date 2024-01-01 00:00 UTC is a Monday, so @weekly (Sundays) aligns forward.
PRESETS = [
    ("@hourly", "0 * * * *", [(utc(2024, 1, 1, 0), utc(2024, 1, 1, 1)),
                              (utc(2024, 1, 1, 1), utc(2024, 1, 1, 2))]),
    ("@daily", "0 0 * * *", [(utc(2024, 1, 1), utc(2024, 1, 2)),
                             (utc(2024, 1, 2), utc(2024, 1, 3))]),
    ("@weekly", "0 0 * * 0", [(utc(2024, 1, 7), utc(2024, 1, 14)),
                              (utc(2024, 1, 14), utc(2024, 1, 21))]),
    ("@monthly", "0 0 1 * *", [(utc(2024, 1, 1), utc(2024, 2, 1)),
                               (utc(2024, 2, 1), utc(2024, 3, 1))]),
    ("@quarterly", "0 0 1 */3 *", [(utc(2024, 1, 1), utc(2024, 4, 1)),
                                   (utc(2024, 4, 1), utc(2024, 7, 1))]),
    ("@yearly", "0 0 1 1 *", [(utc(2024, 1, 1), utc(2025, 1, 1)),
                              (utc(2025, 1, 1), utc(2026, 1, 1))]),
    ("@annually", "0 0 1 1 *", [(utc(2024, 1, 1), utc(2025, 1, 1)),
                                (utc(2025, 1, 1), utc(2026, 1, 1))]),
    ("@midnight", "0 0 * * *", [(utc(2024, 1, 1), utc(2024, 1, 2)),
                                (utc(2024, 1, 2), utc(2024, 1, 3))]),
]  # fmt: skip


@pytest.mark.parametrize(("preset", "cron", "expected"), PRESETS)
def test_preset_expands_to_airflows_cron_and_schedules_data_intervals(
    preset: str, cron: str, expected: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    timetable = data_interval_timetable(preset, "UTC")
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.expression == cron
    assert timetable.summary == cron

    runs = due(preset, start=utc(2024, 1, 1), now=utc(2030, 1, 1), limit=2)

    assert intervals(runs) == expected
    for run, (start, end) in zip(runs, expected, strict=True):
        assert run.logical_date == start
        assert run.run_after == end


@pytest.mark.parametrize("text", ["@DAILY", "  @daily ", "0  0 * * *"])
def test_preset_spelling_and_spacing_are_normalised(text: str) -> None:
    timetable = data_interval_timetable(text, "UTC")
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.expression == "0 0 * * *"


def test_six_field_cron_with_seconds_is_accepted_as_croniter_reads_it() -> None:
    # croniter's sixth field is seconds: "every day at 00:00:30".
    runs = due("0 0 * * * 30", start=utc(2024, 1, 1), now=utc(2024, 1, 3, 12))
    half_minute = dt.timedelta(seconds=30)
    assert intervals(runs) == [
        (utc(2024, 1, 1) + half_minute, utc(2024, 1, 2) + half_minute),
        (utc(2024, 1, 2) + half_minute, utc(2024, 1, 3) + half_minute),
    ]


# --- kinds


@pytest.mark.parametrize(
    ("schedule", "kind", "summary", "periodic", "can_be_scheduled"),
    [
        (None, NullTimetable, "None", False, False),
        ("@once", OnceTimetable, "@once", False, True),
        ("@continuous", ContinuousTimetable, "@continuous", False, True),
        ("*/15 * * * *", CronDataIntervalTimetable, "*/15 * * * *", True, True),
        (dt.timedelta(hours=6), DeltaDataIntervalTimetable, "6:00:00", True, True),
        (dt.timedelta(days=1), DeltaDataIntervalTimetable, "1 day, 0:00:00", True, True),
    ],
)
def test_schedule_values_map_to_airflows_timetables(
    schedule: object, kind: type, summary: str, periodic: bool, can_be_scheduled: bool
) -> None:
    timetable = data_interval_timetable(schedule, "UTC")
    assert type(timetable) is kind
    assert timetable.summary == summary
    assert timetable.periodic is periodic
    assert timetable.can_be_scheduled is can_be_scheduled


def test_cron_description_is_the_cron_in_words() -> None:
    assert data_interval_timetable("0 2 * * *", "UTC").description == "At 02:00 AM"
    assert CronTriggerTimetable("30 6 * * 1-5").description.startswith("At 06:30 AM")
    assert NullTimetable().description == "Never, external triggers only"


def test_relativedelta_of_fixed_length_is_a_delta_schedule() -> None:
    timetable = data_interval_timetable(relativedelta(hours=2, minutes=30), "UTC")
    assert timetable == DeltaDataIntervalTimetable(9000)


# --- data interval vs trigger


def test_cron_data_interval_runs_after_each_interval_ends() -> None:
    runs = due("0 * * * *", start=utc(2024, 1, 1), now=utc(2024, 1, 1, 2, 30))
    assert runs == [
        DagRunInfo(utc(2024, 1, 1, 1), DataInterval(utc(2024, 1, 1, 0), utc(2024, 1, 1, 1)),
                   utc(2024, 1, 1, 0)),
        DagRunInfo(utc(2024, 1, 1, 2), DataInterval(utc(2024, 1, 1, 1), utc(2024, 1, 1, 2)),
                   utc(2024, 1, 1, 1)),
    ]  # fmt: skip


def test_cron_trigger_runs_at_each_tick_with_logical_date_equal_to_tick() -> None:
    runs = due(CronTriggerTimetable("0 * * * *"), start=utc(2024, 1, 1), now=utc(2024, 1, 1, 2, 30))
    assert [r.run_after for r in runs] == [
        utc(2024, 1, 1, 0),
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]
    assert [r.logical_date for r in runs] == [r.run_after for r in runs]
    assert all(r.data_interval.start == r.data_interval.end == r.run_after for r in runs)


def test_cron_trigger_interval_reaches_back_from_the_tick() -> None:
    # Airflow 2: data interval [tick - interval, tick]; logical date = interval start.
    trigger = CronTriggerTimetable("0 * * * *", interval_seconds=1800)
    runs = due(trigger, start=utc(2024, 1, 1), now=utc(2024, 1, 1, 1, 59))
    assert [r.run_after for r in runs] == [utc(2024, 1, 1, 0), utc(2024, 1, 1, 1)]
    assert intervals(runs) == [
        (utc(2023, 12, 31, 23, 30), utc(2024, 1, 1, 0)),
        (utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1)),
    ]
    assert [r.logical_date for r in runs] == [utc(2023, 12, 31, 23, 30), utc(2024, 1, 1, 0, 30)]


def test_positional_expression_and_timezone_keyword() -> None:
    trigger = CronTriggerTimetable("0 * * * *", timezone="Europe/Paris")
    assert (trigger.expression, trigger.timezone) == ("0 * * * *", "Europe/Paris")
    cron = CronDataIntervalTimetable("@daily", timezone="Asia/Tokyo")
    assert (cron.expression, cron.timezone) == ("0 0 * * *", "Asia/Tokyo")
    assert DeltaDataIntervalTimetable(60).seconds == 60
    assert DeltaDataIntervalTimetable(dt.timedelta(minutes=5)).seconds == 300


# --- catchup


@pytest.mark.parametrize(
    ("catchup", "now", "expected"),
    [
        # catchup=True: every complete interval since start_date.
        (True, utc(2024, 1, 4, 12), [(utc(2024, 1, 1), utc(2024, 1, 2)),
                                     (utc(2024, 1, 2), utc(2024, 1, 3)),
                                     (utc(2024, 1, 3), utc(2024, 1, 4))]),
        # catchup=False: only the latest complete interval.
        (False, utc(2024, 1, 4, 12), [(utc(2024, 1, 3), utc(2024, 1, 4))]),
        # now exactly on a tick: the interval ending now is complete and due.
        (False, utc(2024, 1, 4), [(utc(2024, 1, 3), utc(2024, 1, 4))]),
        (True, utc(2024, 1, 2), [(utc(2024, 1, 1), utc(2024, 1, 2))]),
        # before the first interval has ended, nothing is due either way.
        (True, utc(2024, 1, 1, 23, 59), []),
        (False, utc(2024, 1, 1, 23, 59), []),
    ],
)  # fmt: skip
def test_catchup_with_a_frozen_now(
    catchup: bool, now: dt.datetime, expected: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    assert intervals(due("@daily", start=utc(2024, 1, 1), now=now, catchup=catchup)) == expected


@pytest.mark.parametrize(
    ("last_logical", "catchup", "expected"),
    [
        (utc(2024, 1, 2), True, [(utc(2024, 1, 3), utc(2024, 1, 4))]),
        (utc(2024, 1, 1), True, [(utc(2024, 1, 2), utc(2024, 1, 3)),
                                 (utc(2024, 1, 3), utc(2024, 1, 4))]),
        (utc(2024, 1, 3), True, []),
        # catchup=False after a long pause: straight to the latest interval.
        (utc(2023, 12, 1), False, [(utc(2024, 1, 3), utc(2024, 1, 4))]),
        (utc(2024, 1, 2), False, [(utc(2024, 1, 3), utc(2024, 1, 4))]),
        (utc(2024, 1, 3), False, []),
    ],
)  # fmt: skip
def test_due_runs_continue_from_the_last_scheduled_run(
    last_logical: dt.datetime, catchup: bool, expected: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    timetable = data_interval_timetable("@daily", "UTC")
    last = interval_for_logical_date(timetable, last_logical)
    runs = due("@daily", start=utc(2023, 1, 1), now=utc(2024, 1, 4, 12), catchup=catchup, last=last)
    assert intervals(runs) == expected


def test_due_runs_limit_returns_the_oldest_first() -> None:
    timetable = data_interval_timetable("@daily", "UTC")
    runs = due_runs(
        timetable,
        start_date=utc(2024, 1, 1),
        end_date=None,
        catchup=True,
        last_automated_data_interval=None,
        now=utc(2024, 2, 1),
        limit=2,
    )
    assert [r.logical_date for r in runs] == [utc(2024, 1, 1), utc(2024, 1, 2)]


@pytest.mark.parametrize(
    ("catchup", "last_logical", "expected_ticks"),
    [
        (True, None, [utc(2024, 1, 4, 10), utc(2024, 1, 4, 11), utc(2024, 1, 4, 12)]),
        # Without catchup the most recent tick still runs, even 30 minutes late.
        (False, None, [utc(2024, 1, 4, 12)]),
        (False, utc(2024, 1, 4, 9), [utc(2024, 1, 4, 12)]),
        (False, utc(2024, 1, 4, 12), []),
        (True, utc(2024, 1, 4, 11), [utc(2024, 1, 4, 12)]),
    ],
)
def test_cron_trigger_catchup(
    catchup: bool, last_logical: dt.datetime | None, expected_ticks: list[dt.datetime]
) -> None:
    trigger = CronTriggerTimetable("0 * * * *")
    last = None if last_logical is None else interval_for_logical_date(trigger, last_logical)
    runs = due(
        trigger, start=utc(2024, 1, 4, 10), now=utc(2024, 1, 4, 12, 30), catchup=catchup, last=last
    )
    assert [r.run_after for r in runs] == expected_ticks


def test_cron_trigger_without_catchup_waits_for_a_future_start_date() -> None:
    runs = due(
        CronTriggerTimetable("0 * * * *"),
        start=utc(2024, 2, 1),
        now=utc(2024, 1, 4, 12, 30),
        catchup=False,
    )
    assert runs == []


# --- start and end dates


def test_start_date_off_tick_aligns_cron_to_the_next_tick() -> None:
    # start_date 12:00 on a midnight cron: the first interval is 2nd -> 3rd.
    runs = due("@daily", start=utc(2024, 1, 1, 12), now=utc(2024, 1, 4, 12))
    assert intervals(runs) == [
        (utc(2024, 1, 2), utc(2024, 1, 3)),
        (utc(2024, 1, 3), utc(2024, 1, 4)),
    ]


def test_start_date_on_tick_is_the_first_interval_start() -> None:
    runs = due("30 6 * * *", start=utc(2024, 1, 1, 6, 30), now=utc(2024, 1, 3))
    assert intervals(runs) == [(utc(2024, 1, 1, 6, 30), utc(2024, 1, 2, 6, 30))]


def test_delta_schedule_is_anchored_on_start_date_not_aligned() -> None:
    runs = due(dt.timedelta(days=1), start=utc(2024, 1, 1, 12), now=utc(2024, 1, 4, 12))
    assert intervals(runs) == [
        (utc(2024, 1, 1, 12), utc(2024, 1, 2, 12)),
        (utc(2024, 1, 2, 12), utc(2024, 1, 3, 12)),
        (utc(2024, 1, 3, 12), utc(2024, 1, 4, 12)),
    ]


@pytest.mark.parametrize(
    ("end", "expected_starts"),
    [
        # end_date bounds the interval *start*, inclusively, as Airflow's TimeRestriction.latest.
        (utc(2024, 1, 3), [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]),
        (utc(2024, 1, 2, 12), [utc(2024, 1, 1), utc(2024, 1, 2)]),
        (utc(2023, 12, 31), []),
    ],
)
def test_end_date_stops_data_interval_runs(
    end: dt.datetime, expected_starts: list[dt.datetime]
) -> None:
    runs = due("@daily", start=utc(2024, 1, 1), end=end, now=utc(2024, 1, 10))
    assert [r.data_interval.start for r in runs] == expected_starts


def test_end_date_stops_trigger_runs_at_the_last_tick_not_after_it() -> None:
    runs = due(
        CronTriggerTimetable("0 * * * *"),
        start=utc(2024, 1, 1),
        end=utc(2024, 1, 1, 2),
        now=utc(2024, 1, 1, 5),
    )
    assert [r.run_after for r in runs] == [
        utc(2024, 1, 1, 0),
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]


def test_no_start_date_means_no_scheduled_runs() -> None:
    assert due("@daily", start=None, now=utc(2024, 1, 4), catchup=True) == []
    assert due("@once", start=None, now=utc(2024, 1, 4)) == []
    assert due(dt.timedelta(hours=1), start=None, now=utc(2024, 1, 4)) == []


def test_without_start_date_and_catchup_the_latest_interval_still_runs() -> None:
    # Airflow's _skip_to_latest needs no start_date: with catchup=False a cron DAG
    # without one gets the latest complete interval (the SDK may insist on one).
    runs = due("@daily", start=None, now=utc(2024, 1, 4, 12), catchup=False)
    assert intervals(runs) == [(utc(2024, 1, 3), utc(2024, 1, 4))]


def test_naive_start_date_is_wall_clock_in_the_dag_timezone() -> None:
    runs = due(
        "@daily",
        start=dt.datetime(2024, 1, 1),
        now=utc(2024, 1, 2, 12),
        timezone="America/New_York",
    )
    assert intervals(runs) == [(utc(2024, 1, 1, 5), utc(2024, 1, 2, 5))]


def test_pendulum_start_date_gives_plain_utc_datetimes() -> None:
    start = pendulum.datetime(2024, 1, 1, tz="America/New_York")
    runs = due("@daily", start=start, now=utc(2024, 1, 2, 12), timezone="America/New_York")
    assert intervals(runs) == [(utc(2024, 1, 1, 5), utc(2024, 1, 2, 5))]
    assert type(runs[0].run_after) is dt.datetime
    assert runs[0].run_after.tzinfo is UTC


# --- @once, None, @continuous


@pytest.mark.parametrize(
    ("start", "end", "catchup", "last", "now", "expected"),
    [
        # Runs at start_date whatever catchup says (Airflow keeps 1.10's behaviour).
        (utc(2024, 1, 1, 6), None, False, None, utc(2024, 3, 1), [utc(2024, 1, 1, 6)]),
        (utc(2024, 1, 1, 6), None, True, None, utc(2024, 3, 1), [utc(2024, 1, 1, 6)]),
        # Only once.
        (utc(2024, 1, 1, 6), None, True, DataInterval.exact(utc(2024, 1, 1, 6)), utc(2024, 3, 1),
         []),
        # Not before start_date.
        (utc(2024, 1, 1, 6), None, True, None, utc(2024, 1, 1, 5), []),
        # Not if start_date is after end_date.
        (utc(2024, 1, 1, 6), utc(2024, 1, 1), True, None, utc(2024, 3, 1), []),
    ],
)  # fmt: skip
def test_once(
    start: dt.datetime,
    end: dt.datetime | None,
    catchup: bool,
    last: DataInterval | None,
    now: dt.datetime,
    expected: list[dt.datetime],
) -> None:
    runs = due("@once", start=start, end=end, catchup=catchup, last=last, now=now)
    assert [r.run_after for r in runs] == expected
    assert all(r.data_interval == DataInterval.exact(r.run_after) for r in runs)


def test_none_schedule_never_creates_runs() -> None:
    assert due(None, start=utc(2024, 1, 1), now=utc(2030, 1, 1)) == []


def test_continuous_runs_one_at_a_time_covering_the_time_since_the_last_run() -> None:
    first = due("@continuous", start=utc(2024, 1, 1), now=utc(2024, 1, 2, 12))
    assert intervals(first) == [(utc(2024, 1, 1), utc(2024, 1, 2, 12))]
    assert first[0].run_after == utc(2024, 1, 2, 12)

    last = DataInterval(utc(2024, 1, 2, 10), utc(2024, 1, 2, 11))
    after_last = due("@continuous", start=utc(2024, 1, 1), now=utc(2024, 1, 2, 12), last=last)
    assert intervals(after_last) == [(utc(2024, 1, 2, 11), utc(2024, 1, 2, 12))]

    ended = due("@continuous", start=utc(2024, 1, 1), end=utc(2024, 1, 2), now=utc(2024, 1, 2, 12))
    assert ended == []
    assert ContinuousTimetable.active_runs_limit == 1


# --- timedelta


@pytest.mark.parametrize(
    ("start", "catchup", "expected"),
    [
        (utc(2024, 1, 1), True, [(utc(2024, 1, 1, 0), utc(2024, 1, 1, 6)),
                                 (utc(2024, 1, 1, 6), utc(2024, 1, 1, 12)),
                                 (utc(2024, 1, 1, 12), utc(2024, 1, 1, 18))]),
        # catchup=False: now (20:00) rounded down to a multiple of 6 h since the
        # epoch is 18:00; the run covers the 6 h before it.
        (utc(2024, 1, 1), False, [(utc(2024, 1, 1, 12), utc(2024, 1, 1, 18))]),
        # ... and that rounding ignores an off-grid start_date, as Airflow's does.
        (utc(2024, 1, 1, 1), False, [(utc(2024, 1, 1, 12), utc(2024, 1, 1, 18))]),
        (utc(2024, 1, 1, 1), True, [(utc(2024, 1, 1, 1), utc(2024, 1, 1, 7)),
                                    (utc(2024, 1, 1, 7), utc(2024, 1, 1, 13)),
                                    (utc(2024, 1, 1, 13), utc(2024, 1, 1, 19))]),
    ],
)  # fmt: skip
def test_timedelta_schedule(
    start: dt.datetime, catchup: bool, expected: list[tuple[dt.datetime, dt.datetime]]
) -> None:
    runs = due(dt.timedelta(hours=6), start=start, now=utc(2024, 1, 1, 20), catchup=catchup)
    assert intervals(runs) == expected


# --- manual runs


@pytest.mark.parametrize(
    ("schedule", "run_after", "expected"),
    [
        # Airflow's docs: a manual run at 01:00 on the 25th of a midnight DAG covers 24th-25th.
        ("@daily", utc(2024, 1, 25, 1), (utc(2024, 1, 24), utc(2024, 1, 25))),
        ("@daily", utc(2024, 1, 25), (utc(2024, 1, 24), utc(2024, 1, 25))),
        ("0 * * * *", utc(2024, 1, 25, 10, 30), (utc(2024, 1, 25, 9), utc(2024, 1, 25, 10))),
        ("@monthly", utc(2024, 3, 15), (utc(2024, 2, 1), utc(2024, 3, 1))),
        (CronTriggerTimetable("0 * * * *", interval_seconds=3600), utc(2024, 1, 25, 10, 30),
         (utc(2024, 1, 25, 9, 30), utc(2024, 1, 25, 10, 30))),
        (CronTriggerTimetable("0 * * * *"), utc(2024, 1, 25, 10, 30),
         (utc(2024, 1, 25, 10, 30), utc(2024, 1, 25, 10, 30))),
        (dt.timedelta(days=1), utc(2024, 1, 25, 10, 30),
         (utc(2024, 1, 24, 10, 30), utc(2024, 1, 25, 10, 30))),
        (None, utc(2024, 1, 25, 10, 30), (utc(2024, 1, 25, 10, 30), utc(2024, 1, 25, 10, 30))),
        ("@once", utc(2024, 1, 25, 10, 30), (utc(2024, 1, 25, 10, 30), utc(2024, 1, 25, 10, 30))),
        ("@continuous", utc(2024, 1, 25, 10, 30),
         (utc(2024, 1, 25, 10, 30), utc(2024, 1, 25, 10, 30))),
    ],
)  # fmt: skip
def test_manual_run_inferred_interval(
    schedule: object, run_after: dt.datetime, expected: tuple[dt.datetime, dt.datetime]
) -> None:
    timetable = data_interval_timetable(schedule, "UTC")
    assert timetable.infer_manual_data_interval(run_after) == DataInterval(*expected)


# --- logical date -> interval


@pytest.mark.parametrize(
    ("schedule", "logical_date", "expected"),
    [
        ("@daily", utc(2024, 1, 3), (utc(2024, 1, 3), utc(2024, 1, 4))),
        ("@monthly", utc(2024, 2, 1), (utc(2024, 2, 1), utc(2024, 3, 1))),
        (dt.timedelta(hours=6), utc(2024, 1, 1, 1), (utc(2024, 1, 1, 1), utc(2024, 1, 1, 7))),
        (CronTriggerTimetable("0 * * * *", interval_seconds=600), utc(2024, 1, 1, 0, 50),
         (utc(2024, 1, 1, 0, 50), utc(2024, 1, 1, 1))),
        ("@once", utc(2024, 1, 1), (utc(2024, 1, 1), utc(2024, 1, 1))),
    ],
)  # fmt: skip
def test_interval_for_logical_date(
    schedule: object, logical_date: dt.datetime, expected: tuple[dt.datetime, dt.datetime]
) -> None:
    timetable = data_interval_timetable(schedule, "UTC")
    assert interval_for_logical_date(timetable, logical_date) == DataInterval(*expected)


# --- next runs


def nxt(
    schedule: object, *, after: dt.datetime, count: int = 3, **dates: object
) -> list[DagRunInfo]:
    return next_runs(
        data_interval_timetable(schedule, "UTC"),
        start_date=dates.get("start", utc(2024, 1, 1)),  # type: ignore[arg-type]
        end_date=dates.get("end"),  # type: ignore[arg-type]
        after=after,
        count=count,
    )


@pytest.mark.parametrize(
    ("after", "expected_ends"),
    [
        (utc(2024, 6, 15, 10), [utc(2024, 6, 16), utc(2024, 6, 17), utc(2024, 6, 18)]),
        # strictly after: a run whose run_after equals `after` is not "next".
        (utc(2024, 6, 15), [utc(2024, 6, 16), utc(2024, 6, 17), utc(2024, 6, 18)]),
        (utc(2023, 6, 1), [utc(2024, 1, 2), utc(2024, 1, 3), utc(2024, 1, 4)]),
    ],
)
def test_next_runs_of_a_daily_cron(after: dt.datetime, expected_ends: list[dt.datetime]) -> None:
    runs = nxt("@daily", after=after)
    assert [r.run_after for r in runs] == expected_ends
    assert [r.data_interval.end - r.data_interval.start for r in runs] == [dt.timedelta(days=1)] * 3


def test_next_runs_stop_at_end_date() -> None:
    runs = nxt("@daily", after=utc(2024, 6, 15, 10), count=5, end=utc(2024, 6, 17))
    assert [r.logical_date for r in runs] == [utc(2024, 6, 15), utc(2024, 6, 16), utc(2024, 6, 17)]


def test_next_runs_wait_for_a_future_start_date() -> None:
    runs = nxt("@daily", after=utc(2024, 1, 1), count=1, start=utc(2024, 3, 1, 8))
    assert intervals(runs) == [(utc(2024, 3, 2), utc(2024, 3, 3))]


def test_next_runs_of_trigger_and_delta_and_once() -> None:
    trigger = nxt(CronTriggerTimetable("0 * * * *"), after=utc(2024, 1, 2, 10, 30), count=2)
    assert [r.run_after for r in trigger] == [utc(2024, 1, 2, 11), utc(2024, 1, 2, 12)]

    delta = nxt(dt.timedelta(hours=6), after=utc(2024, 1, 2, 8), count=2, start=utc(2024, 1, 1, 1))
    assert intervals(delta) == [
        (utc(2024, 1, 2, 7), utc(2024, 1, 2, 13)),
        (utc(2024, 1, 2, 13), utc(2024, 1, 2, 19)),
    ]

    assert [r.run_after for r in nxt("@once", after=utc(2023, 1, 1))] == [utc(2024, 1, 1)]
    assert nxt("@once", after=utc(2024, 1, 2)) == []
    assert nxt(None, after=utc(2024, 1, 2)) == []
    assert nxt("@daily", after=utc(2024, 1, 2), count=0) == []


# --- building and validation


def test_timetable_without_timezone_takes_the_dags() -> None:
    filled = data_interval_timetable(CronTriggerTimetable("0 * * * *"), "Europe/Paris")
    assert isinstance(filled, CronTriggerTimetable)
    assert filled.timezone == "Europe/Paris"

    explicit = data_interval_timetable(
        CronTriggerTimetable("0 * * * *", timezone="UTC"), "Asia/Tokyo"
    )
    assert isinstance(explicit, CronTriggerTimetable)
    assert explicit.timezone == "UTC"


def test_timetable_round_trips_through_a_dag_spec() -> None:
    spec = DagSpec(
        dag_id="d",
        sdk_version="test",
        timetable=CronDataIntervalTimetable("@hourly", timezone="Europe/London"),
        timezone="Europe/London",
    )
    again = DagSpec.from_json(spec.model_dump_json())
    assert again.timetable == spec.timetable
    assert again.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(utc(2024, 1, 1), None, catchup=True),
        now=utc(2024, 1, 2),
    ) == DagRunInfo.interval(utc(2024, 1, 1), utc(2024, 1, 1, 1))


@pytest.mark.parametrize(
    ("schedule", "timezone", "message"),
    [
        ("61 * * * *", "UTC", "invalid cron expression '61 * * * *'"),
        ("* * *", "UTC", "invalid cron expression '* * *'"),
        ("every day", "UTC", "invalid cron expression 'every day'"),
        ("0 0 30 2 *", "UTC", "cron expression '0 0 30 2 *' never fires"),
        ("@fortnightly", "UTC", "unknown schedule preset '@fortnightly'"),
        ("@daily", "Mars/Olympus_Mons", "unknown timezone 'Mars/Olympus_Mons'"),
        ("", "UTC", "schedule is an empty string"),
        (dt.timedelta(0), "UTC", "schedule datetime.timedelta(0): schedule interval must be"),
        (dt.timedelta(hours=-1), "UTC", "must be positive"),
        (relativedelta(months=1), "UTC", "relativedelta"),
        (42, "UTC", "schedule 42 is not a valid schedule"),
    ],
)
def test_bad_schedules_raise_schedule_error_naming_the_value(
    schedule: object, timezone: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        data_interval_timetable(schedule, timezone)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("timetable", "message"),
    [
        (CronDataIntervalTimetable("@once"), "'@once' is a schedule of its own"),
        (CronDataIntervalTimetable("@bogus"), "unknown schedule preset '@bogus'"),
        (CronTriggerTimetable("0 * * *"), "invalid cron expression '0 * * *'"),
        (CronTriggerTimetable("0 * * * *", timezone="Nowhere/City"), "unknown timezone"),
        (CronTriggerTimetable("0 * * * *", interval_seconds=-5), "zero or positive"),
        (DeltaDataIntervalTimetable(0), "must be positive"),
        (DeltaDataIntervalTimetable(float("nan")), "must be positive"),
    ],
)
def test_validate_reports_what_is_wrong(timetable: object, message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        timetable.validate()  # type: ignore[attr-defined]


def test_invalid_timetable_fails_when_asked_to_schedule_not_when_built() -> None:
    # Built quietly so a DAG can collect every problem; used, it says what is wrong.
    broken = CronDataIntervalTimetable("not a cron")
    with pytest.raises(ScheduleError, match="invalid cron expression 'not a cron'"):
        broken.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(utc(2024, 1, 1), None, catchup=True),
            now=utc(2024, 1, 2),
        )


@pytest.mark.parametrize(
    ("timezone", "first_run_after"),
    [
        # start 00:00Z is 05:30 local: the first local midnight is 18:30Z on the 1st,
        # so the first interval ends at the next one, 18:30Z on the 2nd.
        ("+05:30", utc(2024, 1, 2, 18, 30)),
        # 00:00Z is 21:00 local on Dec 31: local midnights fall at 03:00Z.
        ("-03:00", utc(2024, 1, 2, 3)),
        ("UTC", utc(2024, 1, 2)),
    ],
)
def test_fixed_offset_timezones(timezone: str, first_run_after: dt.datetime) -> None:
    runs = due("@daily", start=utc(2024, 1, 1), now=utc(2024, 1, 4), timezone=timezone)
    assert runs[0].run_after == first_run_after
