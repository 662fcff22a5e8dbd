"""Backfill date planning: Airflow 3's dates, reprocess behaviours, direction."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core.backfill import (
    BackfillError,
    NonPeriodicSchedule,
    NoSchedule,
    ReprocessBehavior,
    SkipReason,
    candidate_runs,
    check_backfillable,
    plan_backfill,
    run_info_at,
)
from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.states import DagRunState
from chalicelib.core.timetable_base import NullTimetable, OnceTimetable

UTC = dt.UTC
NOW = dt.datetime(2025, 1, 1, tzinfo=UTC)


def at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, hour, tzinfo=UTC)


def test_dates_are_the_timetables_logical_dates_in_the_range() -> None:
    infos = candidate_runs(CronDataIntervalTimetable("0 * * * *"), at(0), at(3), NOW)
    assert [i.logical_date for i in infos] == [at(0), at(1), at(2), at(3)]
    assert infos[0].data_interval.end == at(1) and infos[0].run_after == at(1)


def test_an_unaligned_start_begins_at_the_next_tick() -> None:
    infos = candidate_runs(
        CronDataIntervalTimetable("0 * * * *"), at(0) + dt.timedelta(minutes=30), at(2), NOW
    )
    assert [i.logical_date for i in infos] == [at(1), at(2)]


def test_only_intervals_that_have_ended() -> None:
    infos = candidate_runs(
        CronDataIntervalTimetable("0 * * * *"), at(0), at(5), at(2) + dt.timedelta(minutes=1)
    )
    assert [i.logical_date for i in infos] == [at(0), at(1)]


def test_trigger_timetable_dates() -> None:
    infos = candidate_runs(CronTriggerTimetable("0 * * * *"), at(0), at(2), NOW)
    assert [i.logical_date for i in infos] == [at(0), at(1), at(2)]


def test_run_backwards_reverses_the_order() -> None:
    infos = candidate_runs(
        CronDataIntervalTimetable("0 * * * *"), at(0), at(2), NOW, run_backwards=True
    )
    assert [i.logical_date for i in infos] == [at(2), at(1), at(0)]


def test_from_after_to_is_refused() -> None:
    with pytest.raises(BackfillError):
        candidate_runs(CronDataIntervalTimetable("0 * * * *"), at(3), at(1), NOW)


def test_only_periodic_schedules_can_be_backfilled() -> None:
    check_backfillable("d", CronDataIntervalTimetable("@daily"))
    with pytest.raises(NoSchedule, match="has no schedule"):
        check_backfillable("d", NullTimetable())
    with pytest.raises(NonPeriodicSchedule):
        check_backfillable("d", OnceTimetable())


def _plan(existing: dict[dt.datetime, DagRunState], reprocess: ReprocessBehavior):
    infos = candidate_runs(CronDataIntervalTimetable("0 * * * *"), at(0), at(4), NOW)
    return plan_backfill(infos, existing, reprocess)


EXISTING = {
    at(1): DagRunState.SUCCESS,
    at(2): DagRunState.FAILED,
    at(3): DagRunState.RUNNING,
}


def test_reprocess_none_skips_every_date_with_a_run() -> None:
    plan = _plan(EXISTING, ReprocessBehavior.NONE)
    assert [i.logical_date for i in plan.runs] == [at(0), at(4)]
    assert {s.logical_date: s.reason for s in plan.skipped} == {
        at(1): SkipReason.ALREADY_EXISTS,
        at(2): SkipReason.ALREADY_EXISTS,
        at(3): SkipReason.IN_FLIGHT,
    }


def test_reprocess_failed_runs_failed_dates_again() -> None:
    plan = _plan(EXISTING, ReprocessBehavior.FAILED)
    assert [i.logical_date for i in plan.runs] == [at(0), at(2), at(4)]
    assert {s.logical_date: s.reason for s in plan.skipped} == {
        at(1): SkipReason.ALREADY_EXISTS,
        at(3): SkipReason.IN_FLIGHT,
    }


def test_reprocess_completed_runs_finished_dates_again_never_active_ones() -> None:
    plan = _plan(EXISTING, ReprocessBehavior.COMPLETED)
    assert [i.logical_date for i in plan.runs] == [at(0), at(1), at(2), at(4)]
    assert {s.logical_date: s.reason for s in plan.skipped} == {at(3): SkipReason.IN_FLIGHT}


def test_run_info_at_one_date() -> None:
    info = run_info_at(CronDataIntervalTimetable("0 * * * *"), at(2))
    assert info is not None and info.data_interval.end == at(3)
    assert (
        run_info_at(CronDataIntervalTimetable("0 * * * *"), at(2) + dt.timedelta(minutes=5)) is None
    )
