"""Airflow 3's default: a cron, a preset or a timedelta is a *trigger* timetable.

The logical date is the time the run is due and the data interval is that
point; Airflow 2's data intervals come back only when the deployment asks
(tests/core/test_timetables.py pins those).
"""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta

from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.data_intervals import DataInterval
from chalicelib.core.delta_timetables import DeltaDataIntervalTimetable, DeltaTriggerTimetable
from chalicelib.core.errors import ScheduleError
from chalicelib.core.spec import DagSpec
from chalicelib.core.timetables import due_runs, next_runs, timetable_from_schedule

UTC = dt.UTC


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "kind"),
    [
        ("@daily", CronTriggerTimetable),
        ("30 6 * * 1-5", CronTriggerTimetable),
        (dt.timedelta(hours=6), DeltaTriggerTimetable),
        (relativedelta(hours=2), DeltaTriggerTimetable),
    ],
)
def test_crons_presets_and_deltas_become_trigger_timetables(schedule: object, kind: type) -> None:
    assert type(timetable_from_schedule(schedule, "UTC")) is kind


@pytest.mark.parametrize(
    ("schedule", "flags", "kind"),
    [
        ("@daily", {"cron_data_intervals": True}, CronDataIntervalTimetable),
        ("@daily", {"delta_data_intervals": True}, CronTriggerTimetable),
        (dt.timedelta(hours=6), {"delta_data_intervals": True}, DeltaDataIntervalTimetable),
        (dt.timedelta(hours=6), {"cron_data_intervals": True}, DeltaTriggerTimetable),
    ],
)
def test_each_setting_brings_back_data_intervals_for_its_own_kind(
    schedule: object, flags: dict[str, bool], kind: type
) -> None:
    assert type(timetable_from_schedule(schedule, "UTC", **flags)) is kind


@pytest.mark.parametrize(
    "explicit",
    [
        CronDataIntervalTimetable("@daily"),
        CronTriggerTimetable("@daily"),
        DeltaDataIntervalTimetable(3600),
        DeltaTriggerTimetable(3600),
    ],
)
@pytest.mark.parametrize("data_intervals", [True, False])
def test_timetable_objects_are_honoured_whatever_the_setting(
    explicit: object, data_intervals: bool
) -> None:
    built = timetable_from_schedule(
        explicit, "UTC", cron_data_intervals=data_intervals, delta_data_intervals=data_intervals
    )
    assert type(built) is type(explicit)


def test_a_daily_cron_runs_at_each_midnight_with_the_tick_as_logical_date() -> None:
    runs = due_runs(
        timetable_from_schedule("@daily", "UTC"),
        start_date=at(1),
        end_date=None,
        catchup=True,
        last_automated_data_interval=None,
        now=at(3, 12),
    )
    assert [(r.run_after, r.logical_date) for r in runs] == [
        (at(1), at(1)),
        (at(2), at(2)),
        (at(3), at(3)),
    ]
    assert all(r.data_interval == DataInterval(r.logical_date, r.logical_date) for r in runs)


def test_without_catchup_a_cron_runs_only_the_latest_tick() -> None:
    runs = due_runs(
        timetable_from_schedule("@daily", "UTC"),
        start_date=at(1),
        end_date=None,
        catchup=False,
        last_automated_data_interval=None,
        now=at(4, 12),
    )
    assert [r.logical_date for r in runs] == [at(4)]


def test_a_manual_run_covers_only_its_own_logical_date() -> None:
    for schedule in ("@daily", dt.timedelta(hours=6)):
        timetable = timetable_from_schedule(schedule, "UTC")
        assert timetable.infer_manual_data_interval(at(25, 10, 30)) == DataInterval(
            at(25, 10, 30), at(25, 10, 30)
        )


def test_a_delta_trigger_runs_at_start_date_then_every_delta_with_catchup() -> None:
    runs = due_runs(
        DeltaTriggerTimetable(dt.timedelta(hours=6)),
        start_date=at(1, 1),
        end_date=None,
        catchup=True,
        last_automated_data_interval=None,
        now=at(1, 19),
    )
    assert [r.logical_date for r in runs] == [at(1, 1), at(1, 7), at(1, 13), at(1, 19)]
    assert all(r.run_after == r.logical_date == r.data_interval.end for r in runs)


def test_a_delta_trigger_without_catchup_skips_to_the_latest_point_of_its_grid() -> None:
    timetable = DeltaTriggerTimetable(dt.timedelta(hours=6))
    first = due_runs(
        timetable,
        start_date=at(1, 1),
        end_date=None,
        catchup=False,
        last_automated_data_interval=None,
        now=at(3, 2),
    )
    assert [r.logical_date for r in first] == [at(3, 1)]
    after_a_pause = due_runs(
        timetable,
        start_date=at(1, 1),
        end_date=None,
        catchup=False,
        last_automated_data_interval=DataInterval(at(3, 1), at(3, 1)),
        now=at(4, 20),
    )
    assert [r.logical_date for r in after_a_pause] == [at(4, 19)]


def test_a_late_tick_does_not_move_a_delta_trigger_off_its_grid() -> None:
    """The scheduler's tick comes up to a minute late; the next run stays on time."""
    timetable = DeltaTriggerTimetable(dt.timedelta(hours=1))
    runs = due_runs(
        timetable,
        start_date=at(1),
        end_date=None,
        catchup=False,
        last_automated_data_interval=DataInterval(at(1, 5), at(1, 5)),
        now=at(1, 6, 1),
    )
    assert [r.logical_date for r in runs] == [at(1, 6)]


def test_a_delta_trigger_with_an_interval_reaches_back_and_stops_at_end_date() -> None:
    timetable = DeltaTriggerTimetable(dt.timedelta(hours=6), interval_seconds=dt.timedelta(hours=1))
    runs = due_runs(
        timetable,
        start_date=at(1),
        end_date=at(1, 12),
        catchup=True,
        last_automated_data_interval=None,
        now=at(2),
    )
    assert [(r.data_interval.start, r.data_interval.end) for r in runs] == [
        (at(1) - dt.timedelta(hours=1), at(1)),
        (at(1, 5), at(1, 6)),
        (at(1, 11), at(1, 12)),
    ]
    assert timetable.interval_for_logical_date(at(1, 5)) == DataInterval(at(1, 5), at(1, 6))


def test_next_runs_of_a_delta_trigger_follow_its_grid() -> None:
    runs = next_runs(
        DeltaTriggerTimetable(dt.timedelta(hours=6)),
        start_date=at(1, 1),
        end_date=None,
        after=at(2, 3),
        count=3,
    )
    assert [r.run_after for r in runs] == [at(2, 7), at(2, 13), at(2, 19)]


@pytest.mark.parametrize(
    ("timetable", "message"),
    [
        (DeltaTriggerTimetable(0), "schedule interval must be positive"),
        (DeltaTriggerTimetable(60, interval_seconds=-1), "interval must be zero or positive"),
    ],
)
def test_a_bad_delta_trigger_is_refused_with_its_value(
    timetable: DeltaTriggerTimetable, message: str
) -> None:
    with pytest.raises(ScheduleError, match=message):
        timetable.validate()


def _spec_json(timetable: dict[str, object]) -> str:
    return DagSpec(dag_id="d", sdk_version="0", timetable=timetable).model_dump_json(  # type: ignore[arg-type]
        by_alias=True
    )


def test_a_spec_records_the_timetable_in_force_and_round_trips() -> None:
    spec = DagSpec.from_json(_spec_json({"type": "delta_trigger", "seconds": 3600.0}))
    assert isinstance(spec.timetable, DeltaTriggerTimetable)
    assert DagSpec.from_json(spec.canonical_json()) == spec


def test_an_old_spec_with_a_cron_keeps_its_data_intervals() -> None:
    """Specs written before trigger timetables were the default say "cron": data intervals."""
    spec = DagSpec.from_json(_spec_json({"type": "cron", "expression": "0 0 * * *"}))
    assert isinstance(spec.timetable, CronDataIntervalTimetable)
    runs = due_runs(
        spec.timetable,
        start_date=at(1),
        end_date=None,
        catchup=True,
        last_automated_data_interval=None,
        now=at(2, 1),
    )
    assert [(r.logical_date, r.run_after) for r in runs] == [(at(1), at(2))]
