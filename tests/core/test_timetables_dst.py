"""Cron schedules on a wall clock that jumps: Airflow's DST behaviour, case by case.

2024 transitions used below (from the tz database):
- America/New_York: 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z);
  2024-11-03 02:00 EDT -> 01:00 EST (06:00Z), so 01:00-02:00 happens twice.
- Europe/London: 2024-03-31 01:00 GMT -> 02:00 BST (01:00Z);
  2024-10-27 02:00 BST -> 01:00 GMT (01:00Z).

Airflow evaluates the cron on naive wall-clock time, then localises with
pendulum's "post-transition" rule: a tick inside the spring-forward gap moves
forward by the gap (02:30 -> 03:30), an ambiguous fall-back tick takes its
second occurrence. Crons firing at least every hour instead step by absolute
time so the repeated hour is not skipped. Expected values are worked out by
hand from those rules and written literally.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from chalicelib.core.cron_timetables import CronTriggerTimetable
from chalicelib.core.data_intervals import DagRunInfo, DataInterval
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
NEW_YORK = "America/New_York"
LONDON = "Europe/London"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def upcoming(
    schedule: object, timezone: str, *, after: dt.datetime, count: int
) -> list[DagRunInfo]:
    return next_runs(
        data_interval_timetable(schedule, timezone),
        start_date=utc(2024, 1, 1),
        end_date=None,
        after=after,
        count=count,
    )


def ends(runs: list[DagRunInfo]) -> list[dt.datetime]:
    return [r.run_after for r in runs]


def local_iso(runs: list[DagRunInfo], timezone: str) -> list[str]:
    from zoneinfo import ZoneInfo

    return [r.run_after.astimezone(ZoneInfo(timezone)).isoformat() for r in runs]


# --- daily crons


@pytest.mark.parametrize(
    ("cron", "timezone", "after", "expected_utc", "expected_local"),
    [
        # 02:00 does not exist on 2024-03-10 in New York: that run fires at 03:00 EDT.
        ("0 2 * * *", NEW_YORK, utc(2024, 3, 8, 12),
         [utc(2024, 3, 9, 7), utc(2024, 3, 10, 7), utc(2024, 3, 11, 6), utc(2024, 3, 12, 6)],
         ["2024-03-09T02:00:00-05:00", "2024-03-10T03:00:00-04:00",
          "2024-03-11T02:00:00-04:00", "2024-03-12T02:00:00-04:00"]),
        ("30 2 * * *", NEW_YORK, utc(2024, 3, 9, 12),
         [utc(2024, 3, 10, 7, 30), utc(2024, 3, 11, 6, 30)],
         ["2024-03-10T03:30:00-04:00", "2024-03-11T02:30:00-04:00"]),
        # 01:30 happens twice on 2024-11-03: the run fires once, at the second (EST) one.
        ("30 1 * * *", NEW_YORK, utc(2024, 11, 2),
         [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 6, 30), utc(2024, 11, 4, 6, 30)],
         ["2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-05:00",
          "2024-11-04T01:30:00-05:00"]),
        # London skips 01:00-02:00 on 2024-03-31: 01:30 runs at 02:30 BST.
        ("30 1 * * *", LONDON, utc(2024, 3, 29, 12),
         [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)],
         ["2024-03-30T01:30:00+00:00", "2024-03-31T02:30:00+01:00",
          "2024-04-01T01:30:00+01:00"]),
        # London repeats 01:00-02:00 on 2024-10-27: 01:30 runs once, in GMT.
        ("30 1 * * *", LONDON, utc(2024, 10, 25, 12),
         [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 1, 30), utc(2024, 10, 28, 1, 30)],
         ["2024-10-26T01:30:00+01:00", "2024-10-27T01:30:00+00:00",
          "2024-10-28T01:30:00+00:00"]),
        # Midnight stays local midnight; the DST day's interval is 23 hours long.
        ("@daily", LONDON, utc(2024, 3, 30, 12),
         [utc(2024, 3, 31, 0), utc(2024, 3, 31, 23), utc(2024, 4, 1, 23)],
         ["2024-03-31T00:00:00+00:00", "2024-04-01T00:00:00+01:00",
          "2024-04-02T00:00:00+01:00"]),
    ],
)  # fmt: skip
def test_daily_cron_across_dst(
    cron: str,
    timezone: str,
    after: dt.datetime,
    expected_utc: list[dt.datetime],
    expected_local: list[str],
) -> None:
    runs = upcoming(cron, timezone, after=after, count=len(expected_utc))
    assert ends(runs) == expected_utc
    assert local_iso(runs, timezone) == expected_local
    # Data intervals chain: each starts where the previous ended.
    for earlier, later in itertools.pairwise(runs):
        assert later.data_interval.start == earlier.data_interval.end


def test_interval_lengths_around_new_york_spring_forward() -> None:
    runs = upcoming("0 2 * * *", NEW_YORK, after=utc(2024, 3, 8, 12), count=3)
    assert [r.data_interval for r in runs] == [
        DataInterval(utc(2024, 3, 8, 7), utc(2024, 3, 9, 7)),
        DataInterval(utc(2024, 3, 9, 7), utc(2024, 3, 10, 7)),
        DataInterval(utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)),  # 23 hours
    ]


def test_fall_back_day_interval_is_25_hours() -> None:
    runs = upcoming("30 1 * * *", NEW_YORK, after=utc(2024, 11, 2, 12), count=1)
    assert runs[0].data_interval == DataInterval(utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 6, 30))


# --- hourly crons


@pytest.mark.parametrize(
    ("cron", "timezone", "after", "expected_utc", "expected_local"),
    [
        # Spring forward: 01:00 EST is followed by 03:00 EDT, one hour later.
        ("0 * * * *", NEW_YORK, utc(2024, 3, 10, 5, 30),
         [utc(2024, 3, 10, 6), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)],
         ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00",
          "2024-03-10T04:00:00-04:00"]),
        # Fall back: 01:00 runs twice, EDT then EST.
        ("0 * * * *", NEW_YORK, utc(2024, 11, 3, 4, 30),
         [utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7), utc(2024, 11, 3, 8)],
         ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00",
          "2024-11-03T02:00:00-05:00", "2024-11-03T03:00:00-05:00"]),
        ("30 * * * *", NEW_YORK, utc(2024, 11, 3, 5),
         [utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6, 30), utc(2024, 11, 3, 7, 30)],
         ["2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00",
          "2024-11-03T02:30:00-05:00"]),
        ("0 * * * *", LONDON, utc(2024, 3, 31, 0, 30),
         [utc(2024, 3, 31, 1), utc(2024, 3, 31, 2)],
         ["2024-03-31T02:00:00+01:00", "2024-03-31T03:00:00+01:00"]),
        ("0 * * * *", LONDON, utc(2024, 10, 26, 23, 30),
         [utc(2024, 10, 27, 0), utc(2024, 10, 27, 1), utc(2024, 10, 27, 2)],
         ["2024-10-27T01:00:00+01:00", "2024-10-27T01:00:00+00:00",
          "2024-10-27T02:00:00+00:00"]),
    ],
)  # fmt: skip
def test_hourly_cron_across_dst_runs_every_absolute_hour(
    cron: str,
    timezone: str,
    after: dt.datetime,
    expected_utc: list[dt.datetime],
    expected_local: list[str],
) -> None:
    runs = upcoming(cron, timezone, after=after, count=len(expected_utc))
    assert ends(runs) == expected_utc
    assert local_iso(runs, timezone) == expected_local
    assert all(r.data_interval.end - r.data_interval.start == dt.timedelta(hours=1) for r in runs)


def test_every_two_hours_follows_the_wall_clock_not_absolute_time() -> None:
    # Only crons covering every hour get Airflow's absolute-time stepping; "*/2"
    # hours is evaluated on the wall clock, so intervals stretch and shrink.
    fall = upcoming("0 */2 * * *", NEW_YORK, after=utc(2024, 11, 3, 3, 30), count=3)
    assert [r.data_interval for r in fall] == [
        DataInterval(utc(2024, 11, 3, 2), utc(2024, 11, 3, 4)),  # 22:00 -> 00:00 EDT
        DataInterval(utc(2024, 11, 3, 4), utc(2024, 11, 3, 7)),  # 00:00 EDT -> 02:00 EST: 3 h
        DataInterval(utc(2024, 11, 3, 7), utc(2024, 11, 3, 9)),  # 02:00 -> 04:00 EST
    ]
    spring = upcoming("0 */2 * * *", NEW_YORK, after=utc(2024, 3, 10, 5, 30), count=2)
    assert [r.data_interval for r in spring] == [
        DataInterval(utc(2024, 3, 10, 5), utc(2024, 3, 10, 7)),  # 00:00 EST -> "02:00" = 03:00 EDT
        DataInterval(utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)),  # 03:00 EDT -> 04:00 EDT: 1 h
    ]


# --- catchup, manual runs and other timetables on DST days


def test_catchup_backfills_across_spring_forward() -> None:
    runs = due_runs(
        data_interval_timetable("0 2 * * *", NEW_YORK),
        start_date=dt.datetime(2024, 3, 8),  # naive: midnight in New York
        end_date=None,
        catchup=True,
        last_automated_data_interval=None,
        now=utc(2024, 3, 12, 12),
    )
    assert [r.logical_date for r in runs] == [
        utc(2024, 3, 8, 7),
        utc(2024, 3, 9, 7),
        utc(2024, 3, 10, 7),
        utc(2024, 3, 11, 6),
    ]


@pytest.mark.parametrize("last_logical", [None, utc(2024, 3, 8, 7)])
def test_without_catchup_the_dst_days_interval_is_still_the_latest(
    last_logical: dt.datetime | None,
) -> None:
    # At 08:00 EDT on 2024-03-10 the latest complete interval is 9th 02:00 EST ->
    # 10th 03:00 EDT. (Airflow's _get_prev returns the gap-shifted 03:00 EDT tick
    # for "before 03:00 EDT"; Slipstream steps back to the real previous tick.)
    timetable = data_interval_timetable("0 2 * * *", NEW_YORK)
    last = None if last_logical is None else interval_for_logical_date(timetable, last_logical)
    runs = due_runs(
        timetable,
        start_date=utc(2024, 3, 1),
        end_date=None,
        catchup=False,
        last_automated_data_interval=last,
        now=utc(2024, 3, 10, 12),
    )
    assert [r.data_interval for r in runs] == [
        DataInterval(utc(2024, 3, 9, 7), utc(2024, 3, 10, 7))
    ]


@pytest.mark.parametrize(
    ("cron", "run_after", "expected"),
    [
        ("0 2 * * *", utc(2024, 3, 10, 12), DataInterval(utc(2024, 3, 9, 7), utc(2024, 3, 10, 7))),
        ("30 1 * * *", utc(2024, 11, 3, 12),
         DataInterval(utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 6, 30))),
    ],
)  # fmt: skip
def test_manual_run_on_a_dst_day_covers_the_last_complete_interval(
    cron: str, run_after: dt.datetime, expected: DataInterval
) -> None:
    timetable = data_interval_timetable(cron, NEW_YORK)
    assert timetable.infer_manual_data_interval(run_after) == expected


def test_cron_trigger_fires_at_the_shifted_time_in_the_gap() -> None:
    runs = upcoming(CronTriggerTimetable("0 2 * * *"), NEW_YORK, after=utc(2024, 3, 8, 12), count=3)
    assert ends(runs) == [utc(2024, 3, 9, 7), utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)]
    assert [r.logical_date for r in runs] == ends(runs)


def test_timedelta_keeps_absolute_time_and_drifts_on_the_wall_clock() -> None:
    runs = due_runs(
        data_interval_timetable(dt.timedelta(days=1), NEW_YORK),
        start_date=dt.datetime(2024, 3, 9, 2),  # naive: 02:00 EST = 07:00Z
        end_date=None,
        catchup=True,
        last_automated_data_interval=None,
        now=utc(2024, 3, 11, 12),
        timezone=NEW_YORK,
    )
    assert ends(runs) == [utc(2024, 3, 10, 7), utc(2024, 3, 11, 7)]
    assert local_iso(runs, NEW_YORK) == ["2024-03-10T03:00:00-04:00", "2024-03-11T03:00:00-04:00"]
