"""The event-driven scheduler: turns ticks, queue messages and finished tries
into engine decisions, and applies them.

Every entry point is safe to run twice on the same input and to be killed
between any two calls: runs have deterministic ids and are created once,
every state change is a conditional write in the store, and a try is handed
to an executor only by the writer that won its SCHEDULED -> QUEUED change.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from chalicelib.core.backfill import is_backfill_run
from chalicelib.core.data_intervals import DataInterval, TimeRestriction
from chalicelib.core.engine import (
    QUEUED_TIMEOUT,
    Command,
    Event,
    ExpandTask,
    FinishRun,
    Reconcile,
    RequeueTask,
    RetryDue,
    RunStarted,
    RunStateView,
    ScheduleTask,
    SetTaskState,
    StartTimer,
    TaskFinished,
    TimeoutCheck,
    decide,
    fail_try,
)
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.messages import (
    DAG_CALLBACK_TASK,
    RunChanged,
    RunCreated,
    RunSnapshot,
    SchedulerMessage,
    TaskFinishedMessage,
    TimerFired,
    WorkerMessage,
)
from chalicelib.core.runs import DagRun, RunType, TaskInstance, make_run_id
from chalicelib.core.slots import (
    UNBOUNDED,
    SlotClaim,
    claims_for,
    dag_key,
    decode_held,
    max_parallelism_bound,
    pool_key,
    task_limit_keys,
    task_width_bound,
)
from chalicelib.core.spec import DagSpec, ExecutorSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.core.validation import resolve_params
from chalicelib.executors.base import DispatchError, Executor
from chalicelib.scheduler.isolation import Failures, isolated
from chalicelib.scheduler.past import StorePastView, changed_tasks, wake_next_runs
from chalicelib.scheduler.specs import SpecCache
from chalicelib.store.base import ActiveRun, DagRecord, StateStore

log = logging.getLogger("slipstream.scheduler")

MAX_SQS_DELAY_SECONDS = 900
"""SQS delays a message at most 15 minutes; longer waits chain messages (see Scheduler.timer)."""

HEARTBEAT_TIMEOUT = dt.timedelta(minutes=5)
"""A running try whose worker has not beaten for this long is presumed dead."""

POOLS_TTL = dt.timedelta(minutes=1)

PROMOTE_PER_KEY = 5
"""Waiting tries looked at per counter when slots free up."""

EXPANSIONS_CACHED = 1024
"""Runs whose map counts a warm container remembers (they never change once set)."""

STALL_TIMEOUT = dt.timedelta(minutes=5)
"""A running run whose finished count has not moved for this long is re-evaluated
whole (``Reconcile``): the safety net for a hand-off lost between a worker
recording its outcome and starting the next tasks."""


class UnknownDag(SlipstreamError):
    """No deployed DAG by that id."""


class SchedulerQueue(Protocol):
    def send(self, message: SchedulerMessage, delay_seconds: int = 0) -> None: ...


@dataclass
class TickReport:
    runs_created: list[str] = field(default_factory=list)
    tries_reaped: list[str] = field(default_factory=list)
    tries_redispatched: list[str] = field(default_factory=list)
    runs_reconciled: list[str] = field(default_factory=list)
    tries_promoted: list[str] = field(default_factory=list)
    deadlines_missed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # items left to the next tick


class Scheduler:
    """One instance per Lambda container (or per local stack); holds no run state."""

    def __init__(
        self,
        store: StateStore,
        queue: SchedulerQueue,
        executors: Mapping[str, Executor],
        *,
        clock: Callable[[], dt.datetime],
        specs: SpecCache | None = None,
        heartbeat_timeout: dt.timedelta = HEARTBEAT_TIMEOUT,
        stall_timeout: dt.timedelta = STALL_TIMEOUT,
        queued_timeout: dt.timedelta = QUEUED_TIMEOUT,
    ):
        self.store = store
        self.queue = queue
        self.executors = executors
        self.clock = clock
        self.specs = specs or SpecCache(store)
        self.heartbeat_timeout = heartbeat_timeout
        self.stall_timeout = stall_timeout
        self.queued_timeout = queued_timeout
        self._pools: dict[str, int] = {}
        self._pools_read_at: dt.datetime | None = None
        self._bounds: dict[str, int] = {}
        self._expansions: dict[tuple[str, str], dict[str, int]] = {}
        from chalicelib.scheduler.backfills import Backfills
        from chalicelib.scheduler.deadlines import Deadlines

        self.backfills = Backfills(self)
        self.deadlines = Deadlines(self)

    # ------------------------------------------------------------- the tick

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
            report.runs_reconciled.extend(self.reconcile_stalled(now, failures))
        # Waiting tries whose slot release was lost (a worker died) start here.
        keys = [pool_key(name) for name in self._pools]
        with failures.item("listing running runs"):
            running = self.store.running_runs()
            keys += sorted({dag_key(r.dag_id) for r in running})
            keys += self._task_limit_keys(running)
        for key in keys:
            with failures.item(f"promoting waiting tries of {key}"):
                report.tries_promoted.extend(self.promote([key]))
        with failures.item("judging due deadlines"):
            report.deadlines_missed.extend(self.deadlines.tick(now, failures))
        report.failures = failures.items
        return report

    def reconcile_stalled(self, now: dt.datetime, failures: Failures | None = None) -> list[str]:
        """Re-evaluate runs that stopped making progress (one read per running run).
        With ``failures``, a run that fails is logged there and the others go on."""
        reconciled: list[str] = []
        for active in self.store.running_runs():
            with isolated(failures, f"reconciling {active.dag_id}/{active.run_id}"):
                if self._reconcile_if_stalled(active.dag_id, active.run_id, now):
                    reconciled.append(f"{active.dag_id}/{active.run_id}")
        return reconciled

    def _reconcile_if_stalled(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        if not self.store.check_stalled(dag_id, run_id, now, self.stall_timeout):
            return False
        run = self.store.get_run(dag_id, run_id)
        if run is None:
            return False
        spec = self.specs.get(run.dag_id, run.version)
        # A worker that died between recording and counting left the counters short.
        progress = self.store.recount(run.dag_id, run.run_id, spec)
        effective = self.advance(run, spec, Reconcile(self.queued_timeout))
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

    def _task_limit_keys(self, running: Sequence[ActiveRun]) -> list[str]:
        """The counters of tasks with their own limits (max_active_tis_per_dag /
        _per_dagrun) in the DAGs that have running runs, from each DAG's current
        spec: one DAG read per such DAG, and only a DAG with such tasks adds keys."""
        keys: set[str] = set()
        for dag_id in sorted({r.dag_id for r in running}):
            record = self.store.get_dag(dag_id)
            if record is None or not record.current_version:
                continue
            spec = self.specs.get(dag_id, record.current_version)
            keys |= task_limit_keys(spec, [r.run_id for r in running if r.dag_id == dag_id])
        return sorted(keys)

    def reap(self, now: dt.datetime, failures: Failures | None = None) -> list[str]:
        """Fail (or retry) tries whose heartbeat went stale: their worker died.
        With ``failures``, a try that fails is logged there and the others go on."""
        return self._reap(now, failures)[0]

    def _reap(
        self, now: dt.datetime, failures: Failures | None = None
    ) -> tuple[list[str], list[str]]:
        """Tries in the heartbeat index past their time: (reaped, dispatched again).

        Only a RUNNING try had a worker that claimed it and went silent; it is
        failed (or retried) as "worker heartbeat lost". A QUEUED try there never
        started (its dispatch failed for now, see ``_dispatch``): it is dispatched
        again as the same try, using none of its retries."""
        reaped: list[str] = []
        redispatched: list[str] = []
        for key, ti in self.store.stale_running(now - self.heartbeat_timeout):
            dag_id, _, run_id = key.partition("#")
            with isolated(failures, f"reaping {dag_id}/{run_id}/{ti.label}"):
                outcome = self._reap_one(dag_id, run_id, ti, now)
                if outcome == "reaped":
                    reaped.append(f"{run_id}/{ti.label}")
                elif outcome == "redispatched":
                    redispatched.append(f"{run_id}/{ti.label}")
        return reaped, redispatched

    def redispatch_queued(self, run: DagRun, spec: DagSpec, task_ids: Sequence[str]) -> list[str]:
        """Dispatch again the QUEUED tries of these unmapped tasks. A hand-off AWS
        interrupted may have queued them and never dispatched them; the worker's
        claim keeps a try dispatched twice from running twice."""
        again: list[str] = []
        now = self.clock()
        for task_id in task_ids:
            task = spec.task(task_id)
            if task.mapping is not None:
                continue  # its instances wait for reconciliation
            ti = self.store.get_instance(run.dag_id, run.run_id, task_id, -1)
            if ti is None or ti.state is not TaskState.QUEUED:
                continue
            requeue = RequeueTask(task_id, -1, ti.try_number, task.executor)
            if self._apply(spec, run, [requeue], now):
                again.append(ti.label)
        return again

    def _reap_one(self, dag_id: str, run_id: str, ti: TaskInstance, now: dt.datetime) -> str | None:
        """ "reaped", "redispatched" or None (nothing to do any more)."""
        run = self.store.get_run(dag_id, run_id)
        if run is None:
            return None
        spec = self.specs.get(dag_id, run.version)
        if ti.state is TaskState.QUEUED:
            executor = spec.task(ti.task_id).executor
            again = RequeueTask(ti.task_id, ti.map_index, ti.try_number, executor)
            return "redispatched" if self._apply(spec, run, [again], now) else None
        commands = fail_try(spec, run, ti, now, reason="worker heartbeat lost")
        effective = self._apply(spec, run, commands, now)
        if not any(_is_state_change(c) for c in effective):
            return None
        if ti.state is TaskState.RUNNING and _ended(commands):
            self.advance(run, spec, TaskFinished(ti.task_id, ti.map_index))
        return "reaped"

    def fail_lost_try(self, dag_id: str, run_id: str, ti: TaskInstance, reason: str) -> bool:
        """Fail (or retry, per its retries) a try whose worker died without recording
        an outcome, as ``ti`` was read; False when it has moved on since (a
        re-delivered report, or the worker recorded after all): nothing changes."""
        run = self.store.get_run(dag_id, run_id)
        if run is None:
            return False
        spec = self.specs.get(dag_id, run.version)
        now = self.clock()
        commands = fail_try(spec, run, ti, now, reason=reason)
        effective = self._apply(spec, run, commands, now)
        if not any(_is_state_change(c) for c in effective):
            return False
        if _ended(commands):
            self.advance(run, spec, TaskFinished(ti.task_id, ti.map_index))
        return True

    # ------------------------------------------------------------ triggers

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

            start_again(self, run, spec, message)
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
        wake_next_runs(self, run, spec, spec.past_wakes)  # a mark may meet the next run's past
        if run.state is DagRunState.QUEUED:
            self.start_run(run, spec)
            run = self.store.get_run(run.dag_id, run.run_id) or run
        if run.state is not DagRunState.RUNNING:
            return
        self.advance(run, spec, Reconcile())
        outcome = self.store.run_progress(run.dag_id, run.run_id).outcome
        if outcome is not None:
            self.finish_run(spec, run, outcome, self.clock())

    def advance(
        self,
        run: DagRun,
        spec: DagSpec,
        event: Event,
        view: RunStateView | None = None,
        *,
        direct: bool = False,
    ) -> list[Command]:
        """Decide what follows ``event`` and apply it.

        Also the worker's mini-scheduler, which passes a view that already
        knows what it just wrote, and ``direct=True``: a first try that claims
        no slot is then dispatched without queueing it first, and its worker
        claims it from NONE. The claim stays the one conditional write that
        decides who starts a try, so the queueing write is only skipped, never
        needed; if the dispatch fails, the try is queued and dispatched as usual.
        """
        effective: list[Command] = []
        if run.state is DagRunState.RUNNING:
            now = self.clock()
            view = view or self.store.run_view(run.dag_id, run.run_id, spec)
            commands = decide(spec, run, event, view, now, StorePastView(self.store, self.specs))
            effective = self._apply(spec, run, commands, now, view=view, direct=direct)
        if spec.past_wakes:  # depends_on_past: the next run may wait on this one
            wake_next_runs(self, run, spec, changed_tasks(event, effective))
        return effective

    # ---------------------------------------------------------- applying

    def pools(self) -> dict[str, int]:
        """Configured pools, as last read (read now only if never read here)."""
        if self._pools_read_at is None:
            self.refresh_pools()
        return self._pools

    def refresh_pools(self) -> None:
        """Re-read the configured pools if the list is a minute old. Called where
        no one waits for it (a tick, a queue message, after a worker's
        hand-off), so the hand-off itself never pays for the read."""
        now = self.clock()
        if self._pools_read_at is None or now - self._pools_read_at >= POOLS_TTL:
            self._pools = self.store.pools()
            self._pools_read_at = now

    def claims(
        self, spec: DagSpec, task_id: str, bound: int | None = None, run_id: str | None = None
    ) -> tuple[SlotClaim, ...]:
        """The slots a try of run ``run_id`` must claim; ``bound`` is the run's width
        when known."""
        width = self._static_bound(spec) if bound is None else bound
        return claims_for(spec, task_id, self.pools(), bound=width, run_id=run_id)

    def _static_bound(self, spec: DagSpec) -> int:
        key = f"{spec.dag_id}@{spec.content_hash}"
        if key not in self._bounds:
            self._bounds[key] = max_parallelism_bound(spec)
        return self._bounds[key]

    def _bounds_for(
        self,
        spec: DagSpec,
        run: DagRun,
        schedules: list[ScheduleTask],
        commands: list[Command],
        view: RunStateView | None,
    ) -> dict[str, int]:
        """For each task about to start, how many tries of this run can be active
        alongside it, as far as is known now (see ``task_width_bound``).

        A mapped DAG's width is unknown before it runs, but a task can only
        overlap the tasks it is not ordered with, and once a map is expanded
        its count is fixed. With one active run at a time, a try whose bound
        fits max_active_tasks then claims nothing, like any DAG that can
        never reach its limit. Counts come from this batch's expansions, then
        a per-run cache (they never change), then the view (the hand-off's
        view knows the map it just counted).
        """
        task_ids = sorted({c.task_id for c in schedules})
        static = self._static_bound(spec)
        if static < UNBOUNDED or spec.max_active_runs != 1:
            return dict.fromkeys(task_ids, static)
        key = (run.dag_id, run.run_id)
        if len(self._expansions) >= EXPANSIONS_CACHED and key not in self._expansions:
            self._expansions.pop(next(iter(self._expansions)))
        counts = self._expansions.setdefault(key, {})
        counts.update({c.task_id: c.count for c in commands if isinstance(c, ExpandTask)})
        bounds = {tid: task_width_bound(spec, tid, counts) for tid in task_ids}
        missing = [
            t for t, task in spec.tasks.items() if task.mapping is not None and t not in counts
        ]
        if not missing or all(b < UNBOUNDED for b in bounds.values()):
            return bounds
        view = view or self.store.run_view(run.dag_id, run.run_id, spec)
        for tid, summary in view.summaries(missing).items():
            if summary.mapped_count is not None:
                counts[tid] = summary.mapped_count
        return {tid: task_width_bound(spec, tid, counts) for tid in task_ids}

    def _apply(
        self,
        spec: DagSpec,
        run: DagRun,
        commands: list[Command],
        now: dt.datetime,
        *,
        view: RunStateView | None = None,
        direct: bool = False,
    ) -> list[Command]:
        if not commands:
            return []
        # Tries start best priority first (Airflow's priority_weight); everything
        # else keeps its order, and expansions come before their instances' tries.
        schedules = sorted(
            (c for c in commands if isinstance(c, ScheduleTask)), key=lambda c: -c.priority
        )
        if schedules:
            bounds = self._bounds_for(spec, run, schedules, commands, view)
            schedules = [
                replace(c, claims=self.claims(spec, c.task_id, bounds[c.task_id], run.run_id))
                for c in schedules
            ]
        unqueued = [
            c for c in schedules if direct and not c.claims and c.expected is TaskState.NONE
        ]
        commands = [c for c in commands if not isinstance(c, ScheduleTask)] + [
            c for c in schedules if c not in unqueued
        ]

        def dispatch_at_once(cmd: Command) -> None:
            if isinstance(cmd, RequeueTask):
                self._dispatch(spec, run, cmd, now)  # it keeps the slots it holds
                return
            if not isinstance(cmd, ScheduleTask):
                return
            if cmd.claims and not self.store.acquire(
                run.dag_id,
                run.run_id,
                spec,
                cmd.task_id,
                cmd.map_index,
                cmd.try_number,
                cmd.claims,
                now,
            ):
                return  # waits SCHEDULED until a slot frees (promote)
            self._dispatch(spec, run, cmd, now)

        effective = self.store.apply(
            run.dag_id, run.run_id, spec, commands, now, on_taken=dispatch_at_once
        )
        if unqueued:
            effective += self._dispatch_direct(spec, run, unqueued, commands, effective, now)
        guessed: frozenset[str] = getattr(view, "assumed_waiting", frozenset())  # runtime.handoff
        if any(c.task_id in guessed and c not in effective for c in commands if c in schedules):
            effective += self.advance(run, spec, Reconcile())  # a cleared task: read it
        freed = [h for c in effective if isinstance(c, SetTaskState) for h in c.held_slots]
        self.freed(freed)  # given back by the writes themselves: start who waits
        for cmd in effective:
            if isinstance(cmd, StartTimer):
                message = TimerFired(
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    task_id=cmd.event.task_id,
                    map_index=cmd.event.map_index,
                )
                self.timer(message, cmd.due, now)
            elif isinstance(cmd, FinishRun):
                self.finish_run(spec, run, cmd.state, now)
        return effective

    def _dispatch_direct(
        self,
        spec: DagSpec,
        run: DagRun,
        unqueued: list[ScheduleTask],
        written: list[Command],
        taken: list[Command],
        now: dt.datetime,
    ) -> list[Command]:
        """Dispatch first tries without queueing them (their workers claim from NONE)."""
        # A map another writer expanded first is being started by that writer.
        lost = {c.task_id for c in written if isinstance(c, ExpandTask) and c not in taken}
        dispatched: list[Command] = []
        fallback: list[Command] = []
        for cmd in unqueued:
            if cmd.task_id in lost:
                continue
            if self._dispatch(spec, run, cmd, now, direct=True):
                dispatched.append(cmd)
            else:
                fallback.append(cmd)
        if fallback:  # queue them as usual: a failing dispatch then fails the try
            dispatched += self._apply(spec, run, fallback, now)
        return dispatched

    def _dispatch(
        self,
        spec: DagSpec,
        run: DagRun,
        cmd: ScheduleTask | RequeueTask,
        now: dt.datetime,
        *,
        direct: bool = False,
        attempt: int = 1,
    ) -> bool:
        """Hand a try to its executor. Unless ``direct``, the store already moved it
        to QUEUED for us, and a failed dispatch fails (or retries) the try; one
        refused for now is started again with backoff (``attempt``: start_backoff)."""
        message = WorkerMessage(
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=cmd.task_id,
            map_index=cmd.map_index,
            try_number=cmd.try_number,
            version=run.version,
            direct=direct,
            run=RunSnapshot.of(run),
        )
        executor = self.executors.get(cmd.executor.kind)
        try:
            if executor is None:
                raise DispatchError(f"no executor {cmd.executor.kind!r} is configured here")
            handle = executor.dispatch(message, cmd.executor)
        except DispatchError as exc:
            if direct:
                log.warning("direct dispatch of %s failed, queueing it: %s", message.label, exc)
                return False
            if exc.transient:
                # The try never started: it waits QUEUED, keeping its retries for
                # its own failures, and is started again after a backoff.
                from chalicelib.scheduler.start_backoff import start_refused

                start_refused(self, spec, run, cmd, now, attempt, exc)
                return False
            log.error("dispatch of %s failed: %s", message.label, exc)
            ti = self.store.get_instance(run.dag_id, run.run_id, cmd.task_id, cmd.map_index)
            if ti is not None and ti.state is TaskState.QUEUED:
                self._apply(spec, run, fail_try(spec, run, ti, now, reason=str(exc)), now)
            return False
        if handle.kind == "ecs" and not direct:  # a mark stops it; a stop event finds it
            self.store.record_executor_id(
                run.dag_id, run.run_id, spec, cmd.task_id, cmd.map_index, cmd.try_number,
                handle.ref, now,
            )  # fmt: skip
        return True

    def freed(self, held: Sequence[str], known: DagRun | None = None) -> None:
        """Slots ``held`` were given back, by the very write that ended their try:
        start the best waiting tries of those counters. ``known`` is a run the
        caller holds already (its waiting tries need no read)."""
        if held:
            self.promote(sorted({decode_held(h)[0] for h in held}), known=known)

    def _start_waiting(self, run: DagRun, ti: TaskInstance, now: dt.datetime) -> bool:
        """Queue and dispatch one waiting try; False when it cannot have its slots."""
        spec = self.specs.get(run.dag_id, run.version)
        claims = self.claims(spec, ti.task_id, run_id=run.run_id)
        if not self.store.acquire(
            run.dag_id, run.run_id, spec, ti.task_id, ti.map_index, ti.try_number, claims, now
        ):
            return False  # full (or someone else queued it)
        self._dispatch(spec, run, self._waiting_command(spec, ti, claims), now)
        return True

    def _waiting_run(self, run_key: str, known: DagRun | None) -> DagRun | None:
        dag_id, _, run_id = run_key.partition("#")
        same = known is not None and (known.dag_id, known.run_id) == (dag_id, run_id)
        run = known if same else self.store.get_run(dag_id, run_id)
        if run is None or run.state is not DagRunState.RUNNING:
            return None
        return run

    @staticmethod
    def _waiting_command(
        spec: DagSpec, ti: TaskInstance, claims: tuple[SlotClaim, ...]
    ) -> ScheduleTask:
        task = spec.task(ti.task_id)
        return ScheduleTask(
            ti.task_id,
            ti.map_index,
            TaskState.SCHEDULED,
            ti.try_number,
            spec.priorities[ti.task_id],
            task.pool,
            task.pool_slots,
            task.executor,
            claims,
        )

    def promote(
        self,
        keys: list[str],
        per_key: int = PROMOTE_PER_KEY,
        known: DagRun | None = None,
    ) -> list[str]:
        """Queue waiting tries, best priority first, while their counters have room."""
        started: list[str] = []
        now = self.clock()
        for key in keys:
            for run_key, ti in self.store.waiting(key, per_key):
                run = self._waiting_run(run_key, known)
                if run is None:
                    continue
                if not self._start_waiting(run, ti, now):
                    break  # full again (or someone else queued it): the next release retries
                started.append(f"{run.run_id}/{ti.label}")
        return started

    def timer(self, message: TimerFired, due: dt.datetime, now: dt.datetime) -> None:
        """Deliver ``message`` at ``due``. Waits over 15 minutes chain delay messages:
        the engine answers an early RetryDue with a new StartTimer."""
        delay = max(0, min(MAX_SQS_DELAY_SECONDS, int((due - now).total_seconds() + 0.999)))
        self.queue.send(message, delay_seconds=delay)

    def finish_run(self, spec: DagSpec, run: DagRun, state: DagRunState, now: dt.datetime) -> None:
        if not self.store.finish_run(run.dag_id, run.run_id, state, now):
            return
        log.info("run %s/%s finished: %s", run.dag_id, run.run_id, state.value)
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


def _last_interval(record: DagRecord) -> DataInterval | None:
    if record.last_interval_start is None or record.last_interval_end is None:
        return None
    return DataInterval(record.last_interval_start, record.last_interval_end)


def _is_state_change(cmd: Command) -> bool:
    return not isinstance(cmd, (StartTimer, FinishRun))


def _ended(commands: list[Command]) -> bool:
    return any(
        getattr(c, "state", None) in (TaskState.FAILED,) for c in commands if _is_state_change(c)
    )
