"""Which runs a backfill makes: Airflow 3's date planning, as pure functions.

A backfill asks the DAG's own timetable for the runs it would have created
between ``from_date`` and ``to_date`` (catchup ignored, the DAG's start_date
ignored, as Airflow's ``iter_dagrun_infos_between``), keeps the ones whose
data interval has ended, and then decides per logical date, from the run that
date already has, whether to create one (``reprocess_behavior``).

A date whose finished run ``reprocess_behavior`` wants run again is planned
like a new one; the scheduler clears that date's earlier backfill run, or
makes a backfill run beside a scheduled or manual one (see scheduler.backfills).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from chalicelib.core.data_intervals import DagRunInfo, DataInterval, TimeRestriction, as_utc
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState
from chalicelib.core.timetables import Timetable

MAX_BACKFILL_RUNS = 5_000
"""The planned dates live in one DynamoDB item (400 KB); more is refused, not truncated."""

BACKFILL_RUN_PREFIX = "backfill__"
"""Backfill runs have Airflow's run ids (``backfill__<logical date>``): the prefix
tells them from scheduled and manual runs without reading the run."""


class ReprocessBehavior(StrEnum):
    """Airflow's ``ReprocessBehavior``: which dates that have a run run again."""

    NONE = "none"
    FAILED = "failed"
    COMPLETED = "completed"


class SkipReason(StrEnum):
    IN_FLIGHT = "in flight"  # Airflow: the date's run is queued or running
    ALREADY_EXISTS = "already exists"  # Airflow: reprocess_behavior keeps it


class BackfillError(SlipstreamError):
    """The backfill asked for is not possible (bad range, no schedule)."""


class NoSchedule(BackfillError):
    """The DAG has no schedule (``schedule=None``); Airflow answers 409."""


class NonPeriodicSchedule(BackfillError):
    """The DAG's schedule is not periodic (@once, @continuous, events); Airflow: 422."""


@dataclass(frozen=True)
class Skipped:
    logical_date: dt.datetime
    reason: SkipReason


@dataclass(frozen=True)
class BackfillPlan:
    """The runs to create, in creation order, and the dates left alone."""

    runs: tuple[DagRunInfo, ...]
    skipped: tuple[Skipped, ...]


def check_backfillable(dag_id: str, timetable: Timetable) -> None:
    if not timetable.can_be_scheduled:
        raise NoSchedule(f"{dag_id} has no schedule")
    if not timetable.periodic:
        raise NonPeriodicSchedule(f"{dag_id} has a non-periodic schedule")


def check_direction(spec: DagSpec, *, run_backwards: bool) -> None:
    """Airflow refuses a backward backfill of a DAG with depends_on_past tasks:
    each date would wait for a later-created earlier one (core.past)."""
    if run_backwards and spec.past_wakes:
        raise BackfillError(
            "Backfill cannot be run in reverse when the DAG has tasks where depends_on_past=True"
        )


def candidate_runs(
    timetable: Timetable,
    from_date: dt.datetime,
    to_date: dt.datetime,
    now: dt.datetime,
    *,
    run_backwards: bool = False,
) -> list[DagRunInfo]:
    """The runs the timetable makes with logical dates in [from_date, to_date]
    whose data interval has ended by ``now`` (Airflow's ``_get_info_list``)."""
    start, end, now = as_utc(from_date), as_utc(to_date), as_utc(now)
    if start > end:
        raise BackfillError("from_date must be before or equal to to_date")
    restriction = TimeRestriction(start, end, catchup=True)
    infos: list[DagRunInfo] = []
    last: DataInterval | None = None
    # ``now`` far ahead: the range, not the clock, bounds what the timetable offers.
    horizon = max(end, now) + dt.timedelta(days=366)
    while True:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=horizon
        )
        if info is None or info.logical_date > end or info.logical_date < start:
            break
        if info.data_interval.end >= now:
            break
        infos.append(info)
        if len(infos) > MAX_BACKFILL_RUNS:
            raise BackfillError(
                f"the range has more than {MAX_BACKFILL_RUNS} runs; backfill it in parts"
            )
        last = info.data_interval
    if run_backwards:
        infos.reverse()
    return infos


def skip_reason(state: DagRunState, reprocess: ReprocessBehavior) -> SkipReason | None:
    """Why a date that already has a run in ``state`` gets no backfill run (Airflow's
    ``_get_dag_run_no_create_reason``); None when the run is to be reprocessed."""
    if state not in (DagRunState.SUCCESS, DagRunState.FAILED):
        return SkipReason.IN_FLIGHT
    if reprocess is ReprocessBehavior.NONE:
        return SkipReason.ALREADY_EXISTS
    if reprocess is ReprocessBehavior.FAILED and state is not DagRunState.FAILED:
        return SkipReason.ALREADY_EXISTS
    return None


def plan_backfill(
    candidates: Sequence[DagRunInfo],
    existing: Mapping[dt.datetime, DagRunState],
    reprocess: ReprocessBehavior,
) -> BackfillPlan:
    """Split the candidates into runs to make (new dates and reprocessed ones) and
    dates skipped; ``existing`` is the state of the latest run each date has."""
    runs: list[DagRunInfo] = []
    skipped: list[Skipped] = []
    for info in candidates:
        state = existing.get(info.logical_date)
        reason = None if state is None else skip_reason(state, reprocess)
        if reason is None:
            runs.append(info)
        else:
            skipped.append(Skipped(info.logical_date, reason))
    return BackfillPlan(tuple(runs), tuple(skipped))


def is_backfill_run(run_id: str) -> bool:
    return run_id.startswith(BACKFILL_RUN_PREFIX)


def run_info_at(timetable: Timetable, logical_date: dt.datetime) -> DagRunInfo | None:
    """The run the timetable makes for exactly ``logical_date`` (its interval and
    run_after), or None when the timetable has no run there."""
    date = as_utc(logical_date)
    found = candidate_runs(timetable, date, date, date + dt.timedelta(days=3660))
    return found[0] if found and found[0].logical_date == date else None
