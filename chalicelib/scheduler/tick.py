"""The periodic tick: create the runs that are due, reap, reconcile stalled
runs, promote waiting tries and judge deadlines, each item isolated so one
failure is left to the next tick.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from chalicelib.core.backfill import is_backfill_run
from chalicelib.core.data_intervals import DataInterval, TimeRestriction
from chalicelib.core.engine import (
    HEARTBEAT_LOST,
    Command,
    FinishRun,
    Reconcile,
    SetTaskState,
    TaskFinished,
)
from chalicelib.core.messages import RunCreated
from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.slots import pool_key, task_limit_keys
from chalicelib.core.states import TaskState
from chalicelib.scheduler.isolation import Failures, isolated
from chalicelib.scheduler.reaping import Reaping
from chalicelib.store.base import ActiveRun, DagRecord

log = logging.getLogger("slipstream.scheduler")


@dataclass
class TickReport:
    runs_created: list[str] = field(default_factory=list)
    tries_reaped: list[str] = field(default_factory=list)
    tries_redispatched: list[str] = field(default_factory=list)
    runs_reconciled: list[str] = field(default_factory=list)
    tries_promoted: list[str] = field(default_factory=list)
    deadlines_missed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # items left to the next tick


class Ticking(Reaping):
    def tick(self) -> TickReport:
        """Create the runs that are due and reap tries whose worker died.

        Work is proportional to the DAGs due (found through the store's due
        index) plus the stale tries (found through the running index). Each
        DAG, try, run and counter is its own item: one that fails (throttled,
        or broken) is logged and left to the next tick, the others go on.
        """
        now = self.clock()
        report = TickReport()
        failures = Failures(log)
        with failures.item("reading pools"):
            self.refresh_pools()
        due: list[str] = []
        with failures.item("finding due DAGs"):
            due = self.store.due_dags(now)
        for dag_id in due:
            with failures.item(f"scheduling {dag_id}"):
                report.runs_created.extend(self.schedule_dag(dag_id, now))
        with failures.item("advancing backfills"):
            report.runs_created.extend(self.backfills.tick())
        with failures.item("reaping"):
            reaped, redispatched = self._reap(now, failures)
            report.tries_reaped.extend(reaped)
            report.tries_redispatched.extend(redispatched)
        with failures.item("reconciling stalled runs"):
            report.runs_reconciled.extend(
                self.reconcile_stalled(now, failures, reaped=report.tries_reaped)
            )
        # Waiting tries whose slot release was lost (a worker died) start here.
        keys = [pool_key(name) for name in self._pools]
        with failures.item("listing running runs"):
            running = self.store.running_runs()
            keys += self._limit_keys(running)
        for key in keys:
            with failures.item(f"promoting waiting tries of {key}"):
                report.tries_promoted.extend(self.promote([key]))
        with failures.item("judging due deadlines"):
            report.deadlines_missed.extend(self.deadlines.tick(now, failures))
        report.failures = failures.items
        return report

    def reconcile_stalled(
        self,
        now: dt.datetime,
        failures: Failures | None = None,
        *,
        reaped: list[str] | None = None,
    ) -> list[str]:
        """Re-evaluate runs that stopped making progress (one read per running run).
        With ``failures``, a run that fails is logged there and the others go on.
        Tries it fails because their worker died before its first heartbeat (no
        index holds them, see core.engine) are added to ``reaped``."""
        reconciled: list[str] = []
        for active in self.store.running_runs():
            with isolated(failures, f"reconciling {active.dag_id}/{active.run_id}"):
                if self._reconcile_if_stalled(active.dag_id, active.run_id, now, reaped):
                    reconciled.append(f"{active.dag_id}/{active.run_id}")
        return reconciled

    def _reconcile_if_stalled(
        self, dag_id: str, run_id: str, now: dt.datetime, reaped: list[str] | None = None
    ) -> bool:
        if not self.store.check_stalled(dag_id, run_id, now, self.stall_timeout):
            return False
        run = self.store.get_run(dag_id, run_id)
        if run is None:
            return False
        spec = self.specs.get(run.dag_id, run.version)
        # A worker that died between recording and counting left the counters short.
        progress = self.store.recount(run.dag_id, run.run_id, spec)
        reconcile = Reconcile(self.queued_timeout, self.heartbeat_timeout)
        effective = self.advance(run, spec, reconcile)
        lost = _lost_starts(effective)
        for lost_try in lost:
            if lost_try.state is TaskState.FAILED:  # its downstream follows, as the reaper's
                finished = TaskFinished(lost_try.task_id, lost_try.map_index)
                effective += self.advance(run, spec, finished)
        if reaped is not None:
            reaped.extend(f"{run.run_id}/{_label(c)}" for c in lost)
        if progress.outcome is not None and not any(isinstance(c, FinishRun) for c in effective):
            self.finish_run(spec, run, progress.outcome, now)
            effective.append(FinishRun(progress.outcome, "recounted"))
        return bool(effective)

    def schedule_dag(self, dag_id: str, now: dt.datetime) -> list[str]:
        """Create every due run of one DAG that max_active_runs allows, oldest first."""
        record = self.store.get_dag(dag_id)
        if record is None or record.paused or not record.active or not record.current_version:
            return []
        spec = self.specs.get(dag_id, record.current_version)
        timetable = spec.timetable
        restriction = TimeRestriction(spec.start_date, spec.end_date, spec.catchup)
        last = _last_interval(record)
        # Backfill runs count against their backfill's max_active_runs, not the DAG's.
        active = len([r for r in self.store.active_runs(dag_id) if not is_backfill_run(r.run_id)])
        created: list[str] = []
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=now
        )
        while info is not None and info.run_after <= now and active < spec.max_active_runs:
            run = DagRun(
                dag_id=dag_id,
                run_id=make_run_id(RunType.SCHEDULED, info.logical_date),
                run_type=RunType.SCHEDULED,
                logical_date=info.logical_date,
                data_interval_start=info.data_interval.start,
                data_interval_end=info.data_interval.end,
                run_after=info.run_after,
                version=record.current_version,
                tenant=record.tenant,
            )
            if self.store.create_run(run, spec):
                created.append(run.run_id)
                active += 1
            self.queue.send(RunCreated(dag_id=dag_id, run_id=run.run_id))
            last = info.data_interval
            info = timetable.next_dagrun_info(
                last_automated_data_interval=last, restriction=restriction, now=now
            )
        self.store.upsert_dag(
            replace(
                record,
                next_due_at=None if info is None else info.run_after,
                last_interval_start=None if last is None else last.start,
                last_interval_end=None if last is None else last.end,
            )
        )
        return created

    def _limit_keys(self, running: Sequence[ActiveRun]) -> list[str]:
        """The counters of the running runs' max_active_tasks and of tasks with
        their own limits (max_active_tis_per_dag / _per_dagrun), from each DAG's
        current spec: one DAG read per DAG, and only limits that can bind add keys."""
        keys: set[str] = set()
        for dag_id in sorted({r.dag_id for r in running}):
            record = self.store.get_dag(dag_id)
            if record is None or not record.current_version:
                continue
            spec = self.specs.get(dag_id, record.current_version)
            keys |= task_limit_keys(spec, [r.run_id for r in running if r.dag_id == dag_id])
        return sorted(keys)


def _lost_starts(effective: list[Command]) -> list[SetTaskState]:
    """The applied failures of tries whose worker died before its first heartbeat."""
    return [
        c
        for c in effective
        if isinstance(c, SetTaskState)
        and c.expected is TaskState.RUNNING
        and c.reason == HEARTBEAT_LOST
    ]


def _label(command: SetTaskState) -> str:
    index = command.map_index
    return command.task_id if index < 0 else f"{command.task_id}[{index}]"


def _last_interval(record: DagRecord) -> DataInterval | None:
    if record.last_interval_start is None or record.last_interval_end is None:
        return None
    return DataInterval(record.last_interval_start, record.last_interval_end)
