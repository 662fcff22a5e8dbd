"""Backfills in the scheduler: plan the dates, then create their runs a few at a time.

A backfill creates no runs of its own kind of execution: it feeds ordinary
runs (``backfill__<logical date>``) to the same scheduler, at most its
``max_active_runs`` queued or running at once. The next runs are created when
one of its runs finishes (``Scheduler.finish_run``), when it is created or
unpaused, and by the tick (every backfill not completed) in case a hand-off
was lost. Creating a run and moving the cursor are two writes: the run has a
deterministic id, so a retry after a crash between them creates nothing new,
and the cursor moves only from the value its writer read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.core.backfill import (
    BackfillError,
    BackfillPlan,
    ReprocessBehavior,
    candidate_runs,
    check_backfillable,
    check_direction,
    is_backfill_run,
    plan_backfill,
    run_info_at,
)
from chalicelib.core.messages import RunCreated
from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState
from chalicelib.core.validation import resolve_params
from chalicelib.store.backfills import Backfill, backfill_runs_of, latest_states

if TYPE_CHECKING:
    from chalicelib.scheduler.service import Scheduler

log = logging.getLogger("slipstream.scheduler.backfills")

DEFAULT_MAX_ACTIVE_RUNS = 10
"""Airflow's default for a backfill's max_active_runs."""


class BackfillNotFound(BackfillError):
    """No backfill by that id."""


class BackfillCompleted(BackfillError):
    """The backfill is completed (or cancelled): it changes no more."""


class Backfills:
    """The backfill side of one Scheduler; holds no state of its own."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.store = scheduler.store

    # -------------------------------------------------------------- planning

    def _spec(self, dag_id: str) -> tuple[Any, DagSpec]:
        from chalicelib.scheduler.run_lifecycle import UnknownDag

        record = self.store.get_dag(dag_id)
        if record is None or not record.current_version:
            raise UnknownDag(f"no deployed DAG {dag_id!r}")
        return record, self.scheduler.specs.get(dag_id, record.current_version)

    def plan(
        self,
        dag_id: str,
        from_date: dt.datetime,
        to_date: dt.datetime,
        *,
        reprocess: ReprocessBehavior = ReprocessBehavior.NONE,
        run_backwards: bool = False,
    ) -> BackfillPlan:
        """What a backfill would create (the dry run); writes nothing."""
        _, spec = self._spec(dag_id)
        check_backfillable(dag_id, spec.timetable)
        check_direction(spec, run_backwards=run_backwards)
        now = self.scheduler.clock()
        candidates = candidate_runs(
            spec.timetable, from_date, to_date, now, run_backwards=run_backwards
        )
        if not candidates:
            return BackfillPlan((), ())
        # A run of date d has run_after >= d, and no later than the timetable's own run_after.
        low = min(c.logical_date for c in candidates)
        high = max(c.run_after for c in candidates)
        existing = latest_states(self.store.backfills.runs_between(dag_id, low, high))
        return plan_backfill(candidates, existing, reprocess)

    def create(
        self,
        dag_id: str,
        from_date: dt.datetime,
        to_date: dt.datetime,
        *,
        conf: Mapping[str, Any] | None = None,
        reprocess: ReprocessBehavior = ReprocessBehavior.NONE,
        max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS,
        run_backwards: bool = False,
    ) -> Backfill:
        """Store the backfill with its planned dates, then create its first runs.
        Raises ActiveBackfillExists when the DAG has a backfill not completed."""
        if max_active_runs < 1:
            raise BackfillError("max_active_runs must be at least 1")
        _, spec = self._spec(dag_id)
        resolve_params(spec.params, dict(conf or {}))  # refuse a bad conf before writing
        plan = self.plan(
            dag_id, from_date, to_date, reprocess=reprocess, run_backwards=run_backwards
        )
        now = self.scheduler.clock()
        created = self.store.backfills.create(
            Backfill(
                dag_id=dag_id,
                from_date=from_date.astimezone(dt.UTC),
                to_date=to_date.astimezone(dt.UTC),
                reprocess_behavior=reprocess,
                max_active_runs=max_active_runs,
                created_at=now,
                updated_at=now,
                dates=tuple(info.logical_date for info in plan.runs),
                dag_run_conf=dict(conf or {}),
                dag_display_name=spec.display_name or dag_id,
            )
        )
        self.advance(created.id)
        return self.store.backfills.get(created.id) or created

    # -------------------------------------------------------------- running

    def advance(self, backfill_id: int) -> list[str]:
        """Create the backfill's next runs while its max_active_runs allows, or
        complete it when every date has a run and none is active any more."""
        made: list[str] = []
        seen: set[str] = set()  # runs this call made: the state index may lag behind
        backfill = self.store.backfills.get(backfill_id)
        attempts = 0 if backfill is None else 2 * backfill.max_active_runs + 4
        for _ in range(attempts):
            backfill = self.store.backfills.get(backfill_id)
            if backfill is None or backfill.completed_at is not None:
                return made
            active = {r.run_id for r in backfill_runs_of(self.store.active_runs(backfill.dag_id))}
            active |= seen
            now = self.scheduler.clock()
            if backfill.cursor >= len(backfill.dates):
                if not active and self.store.backfills.complete(backfill, now):
                    log.info("backfill %s of %s completed", backfill.id, backfill.dag_id)
                return made
            if backfill.is_paused or len(active) >= backfill.max_active_runs:
                return made
            run_id, created = self._create_run(backfill, backfill.dates[backfill.cursor])
            seen.add(run_id)
            if not self.store.backfills.advance_cursor(backfill.id, backfill.cursor, now):
                continue  # another scheduler moved it: read again
            if created:
                made.append(run_id)
        return made

    def _create_run(self, backfill: Backfill, logical_date: dt.datetime) -> tuple[str, bool]:
        record, spec = self._spec(backfill.dag_id)
        run_id = make_run_id(RunType.BACKFILL, logical_date)
        info = run_info_at(spec.timetable, logical_date)
        if info is None:  # the DAG's schedule changed since the plan: the date still runs
            interval = spec.timetable.interval_for_logical_date(logical_date)
            run_after = interval.end
        else:
            interval, run_after = info.data_interval, info.run_after
        run = DagRun(
            dag_id=backfill.dag_id,
            run_id=run_id,
            run_type=RunType.BACKFILL,
            logical_date=logical_date,
            data_interval_start=interval.start,
            data_interval_end=interval.end,
            run_after=run_after,
            version=record.current_version,
            conf=dict(backfill.dag_run_conf),
            tenant=record.tenant,
            backfill_id=backfill.id,
        )
        created = self.store.create_run(run, spec)
        if not created and backfill.reprocess_behavior is not ReprocessBehavior.NONE:
            created = self._reprocess(backfill, run_id)
        self.scheduler.queue.send(RunCreated(dag_id=run.dag_id, run_id=run_id))
        return run_id, created

    def _reprocess(self, backfill: Backfill, run_id: str) -> bool:
        """The date's backfill run exists from an earlier backfill: clear it if it
        is finished (Airflow clears the date's run too), then adopt it, so its end
        moves this backfill on. Clear first: a crash in between leaves a reopened
        run that a retry adopts, never a finished run that is not run again."""
        from chalicelib.scheduler.interventions import Interventions, run_instances

        existing = self.store.get_run(backfill.dag_id, run_id)
        if existing is None:
            return False
        if existing.backfill_id != backfill.id and existing.state.finished:
            spec = self.scheduler.specs.get(existing.dag_id, existing.version)
            instances = run_instances(self.scheduler, existing, spec)
            Interventions(self.scheduler).clear(existing, spec, instances, dry_run=False)
        return self.store.backfills.adopt_run(backfill.dag_id, run_id, backfill.id)

    def limit_for(self, run: DagRun) -> int | None:
        """The backfill's max_active_runs for one of its runs; 0 while it is paused."""
        if run.backfill_id is None:
            return None
        backfill = self.store.backfills.get(run.backfill_id)
        if backfill is None:
            return None
        if backfill.is_paused and backfill.completed_at is None:
            return 0
        return backfill.max_active_runs

    def tick(self) -> list[str]:
        """The safety net: advance every backfill not completed (a sparse index)."""
        made: list[str] = []
        for backfill_id in self.store.backfills.active_ids():
            made.extend(self.advance(backfill_id))
        return made

    # ----------------------------------------------------------- operators

    def _open(self, backfill_id: int) -> Backfill:
        backfill = self.store.backfills.get(backfill_id)
        if backfill is None:
            raise BackfillNotFound(f"Backfill {backfill_id} not found")
        if backfill.completed_at is not None:
            raise BackfillCompleted("Backfill is already completed.")
        return backfill

    def pause(self, backfill_id: int) -> Backfill:
        self._open(backfill_id)
        if not self.store.backfills.set_paused(backfill_id, True, self.scheduler.clock()):
            raise BackfillCompleted("Backfill is already completed.")
        return self.store.backfills.get(backfill_id) or self._open(backfill_id)

    def unpause(self, backfill_id: int) -> Backfill:
        backfill = self._open(backfill_id)
        if not self.store.backfills.set_paused(backfill_id, False, self.scheduler.clock()):
            raise BackfillCompleted("Backfill is already completed.")
        # Runs held QUEUED while paused start now; then the next dates get runs.
        for active in backfill_runs_of(self.store.active_runs(backfill.dag_id)):
            if active.state is DagRunState.QUEUED:
                self.scheduler.queue.send(RunCreated(dag_id=active.dag_id, run_id=active.run_id))
        self.advance(backfill_id)
        return self.store.backfills.get(backfill_id) or backfill

    def cancel(self, backfill_id: int) -> Backfill:
        """As Airflow: pause first (no new runs), fail its runs still queued, set
        completed_at. Its running runs run to their end."""
        backfill = self._open(backfill_id)
        now = self.scheduler.clock()
        self.store.backfills.set_paused(backfill_id, True, now)
        for active in backfill_runs_of(self.store.active_runs(backfill.dag_id)):
            if active.state is not DagRunState.QUEUED:
                continue
            run = self.store.get_run(active.dag_id, active.run_id)
            if run is not None and run.backfill_id == backfill_id:
                self.store.backfills.fail_queued_run(run.dag_id, run.run_id, now)
        self.store.backfills.complete(backfill, now, pause=True)
        return self.store.backfills.get(backfill_id) or backfill


def is_backfill(run: DagRun) -> bool:
    return run.backfill_id is not None or is_backfill_run(run.run_id)
