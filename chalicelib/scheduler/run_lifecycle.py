"""A run's lifecycle: triggered (manual, backfill, event), started under
max_active_runs, advanced event by event (queue messages, finished tries)
and finished, with its DAG callbacks and the next queued run started.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.aws.errors import describe, is_infrastructure_error
from chalicelib.core.backfill import is_backfill_run
from chalicelib.core.data_intervals import DataInterval
from chalicelib.core.engine import (
    Reconcile,
    RetryDue,
    RunStarted,
    TaskFinished,
    TimeoutCheck,
)
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.messages import (
    DAG_CALLBACK_TASK,
    RunChanged,
    RunCreated,
    SchedulerMessage,
    TaskFinishedMessage,
    TimerFired,
    WorkerMessage,
)
from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.slots import task_limit_keys
from chalicelib.core.spec import DagSpec, ExecutorSpec
from chalicelib.core.states import DagRunState
from chalicelib.core.validation import resolve_params
from chalicelib.executors.base import DispatchError
from chalicelib.scheduler.applying import Applying
from chalicelib.scheduler.past import wake_next_runs

log = logging.getLogger("slipstream.scheduler")


class UnknownDag(SlipstreamError):
    """No deployed DAG by that id."""


class RunLifecycle(Applying):
    def trigger(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        logical_date: dt.datetime | None = None,
        run_type: RunType = RunType.MANUAL,
        event_id: str | None = None,
        run_id: str | None = None,
        data_interval: DataInterval | None = None,
        note: str | None = None,
    ) -> tuple[DagRun, bool]:
        """Create a manual (API), backfill or event run; returns (run, created).

        The conf is checked against the DAG's params before anything is
        written. Run ids are deterministic, so the same trigger twice (the
        same logical date, or the same event id) creates one run; a caller's
        own ``run_id`` that exists already creates nothing (created False).
        ``data_interval`` overrides the one the timetable infers.
        """
        record = self.store.get_dag(dag_id)
        if record is None or not record.current_version:
            raise UnknownDag(f"no deployed DAG {dag_id!r}")
        spec = self.specs.get(dag_id, record.current_version)
        checked = resolve_params(spec.params, dict(conf or {}))
        del checked  # validation only; the run keeps the conf as given
        now = self.clock()
        logical = (logical_date or now).astimezone(dt.UTC)
        interval = data_interval or spec.timetable.infer_manual_data_interval(run_after=logical)
        run = DagRun(
            dag_id=dag_id,
            run_id=run_id or make_run_id(run_type, logical, event_id),
            run_type=run_type,
            logical_date=logical,
            data_interval_start=interval.start,
            data_interval_end=interval.end,
            run_after=logical,
            version=record.current_version,
            conf=dict(conf or {}),
            note=note,
            tenant=record.tenant,
        )
        created = self.store.create_run(run, spec)
        if created:
            self.queue.send(RunCreated(dag_id=dag_id, run_id=run.run_id))
        else:
            run = self.store.get_run(dag_id, run.run_id) or run
        return run, created

    # ------------------------------------------------------- queue messages

    def handle(self, message: SchedulerMessage) -> None:
        self.refresh_pools()
        run = self.store.get_run(message.dag_id, message.run_id)
        if run is None:
            log.warning("message for unknown run %s/%s", message.dag_id, message.run_id)
            return
        spec = self.specs.get(run.dag_id, run.version)
        if isinstance(message, RunCreated):
            self.deadlines.register(run, spec)  # scheduler/deadlines.py
            self.start_run(run, spec)
        elif isinstance(message, TaskFinishedMessage):
            self.advance(run, spec, TaskFinished(message.task_id, message.map_index))
        elif isinstance(message, RunChanged):
            self.on_run_changed(run, spec)
        elif message.kind == "timeout_check":
            self.advance(run, spec, TimeoutCheck())
        elif message.kind == "dispatch":
            from chalicelib.scheduler.start_backoff import start_again

            start_again(self._scheduler, run, spec, message)
        elif message.task_id is not None:
            self.advance(run, spec, RetryDue(message.task_id, message.map_index))

    def start_run(self, run: DagRun, spec: DagSpec) -> None:
        """QUEUED -> RUNNING when max_active_runs allows, then start its first tasks."""
        now = self.clock()
        # A run that started before was reopened by a clear: its unfinished tasks
        # may be anywhere in the graph, not only at its roots.
        reopened = run.state is DagRunState.QUEUED and run.start_date is not None
        if run.state is DagRunState.QUEUED:
            # Airflow 3: a backfill's runs count against the backfill's max_active_runs,
            # the DAG's other runs against the DAG's; neither class holds up the other.
            backfill = is_backfill_run(run.run_id)
            limit = self.backfills.limit_for(run) if backfill else None
            running = [
                r
                for r in self.store.active_runs(run.dag_id)
                if r.state is DagRunState.RUNNING and is_backfill_run(r.run_id) == backfill
            ]
            if len(running) >= (spec.max_active_runs if limit is None else limit):
                return  # started when a running one finishes (see finish_run)
            if not self.store.start_run(run.dag_id, run.run_id, now):
                return  # another scheduler started it
            run = run.with_state(DagRunState.RUNNING, start_date=now)
            if spec.dagrun_timeout is not None:
                self.timer(
                    TimerFired(dag_id=run.dag_id, run_id=run.run_id, kind="timeout_check"),
                    now + dt.timedelta(seconds=spec.dagrun_timeout),
                    now,
                )
        if run.state is DagRunState.RUNNING:
            self.advance(run, spec, Reconcile() if reopened else RunStarted())

    def on_run_changed(self, run: DagRun, spec: DagSpec) -> None:
        """After an operator's clear or mark: start a reopened run, re-evaluate a
        running one whole, and finish it when every instance is finished (a mark
        can finish the last ones with no try left to report it)."""
        # A mark may meet the next run's past.
        wake_next_runs(self._scheduler, run, spec, spec.past_wakes)
        if run.state is DagRunState.QUEUED:
            self.start_run(run, spec)
            run = self.store.get_run(run.dag_id, run.run_id) or run
        if run.state is not DagRunState.RUNNING:
            return
        self.advance(run, spec, Reconcile())
        outcome = self.store.run_progress(run.dag_id, run.run_id).outcome
        if outcome is not None:
            self.finish_run(spec, run, outcome, self.clock())

    def finish_run(self, spec: DagSpec, run: DagRun, state: DagRunState, now: dt.datetime) -> None:
        if not self.store.finish_run(run.dag_id, run.run_id, state, now):
            return
        log.info("run %s/%s finished: %s", run.dag_id, run.run_id, state.value)
        self._drop_run_counters(spec, run)
        wanted = (
            spec.on_success_callback if state is DagRunState.SUCCESS else spec.on_failure_callback
        )
        if wanted is not None:
            # User code: a worker runs it. finish_run is won once, so this is sent once.
            callback = WorkerMessage(
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=DAG_CALLBACK_TASK,
                try_number=1,
                version=run.version,
            )
            executor = self.executors.get("lambda") or next(iter(self.executors.values()), None)
            try:
                if executor is None:
                    raise DispatchError("no executor is configured to run DAG callbacks")
                executor.dispatch(callback, ExecutorSpec(kind="lambda"))
            except DispatchError as exc:
                log.error("DAG callback of %s/%s not dispatched: %s", run.dag_id, run.run_id, exc)
        # A slot under max_active_runs opened: start the oldest queued run of its class.
        backfill = is_backfill_run(run.run_id)
        queued = [
            r
            for r in self.store.active_runs(run.dag_id)
            if r.state is DagRunState.QUEUED and is_backfill_run(r.run_id) == backfill
        ]
        if queued:
            oldest = min(queued, key=lambda r: r.run_after)
            self.queue.send(RunCreated(dag_id=oldest.dag_id, run_id=oldest.run_id))
        if backfill:
            backfill_id = run.backfill_id
            if backfill_id is None:  # a caller's run from an older message: read it
                stored = self.store.get_run(run.dag_id, run.run_id)
                backfill_id = None if stored is None else stored.backfill_id
            if backfill_id is not None:
                self.backfills.advance(backfill_id)  # its next dates get runs

    def _drop_run_counters(self, spec: DagSpec, run: DagRun) -> None:
        """The run's own slot counters (max_active_tasks, max_active_tis_per_dagrun)
        serve no one once it ended; kept, each would stay in the pools table for
        good. One still held by a straggler try stays (its release counts right)."""
        keys = sorted(
            key
            for key in task_limit_keys(spec, [run.run_id])
            if key.startswith(("dagrun:", "runtask:"))
        )
        if not keys:
            return
        try:
            self.store.drop_idle_counters(keys)
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning(
                "slot counters of %s/%s not removed: %s", run.dag_id, run.run_id, describe(exc)
            )
