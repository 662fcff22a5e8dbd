"""Applying the engine's decisions: conditional writes through the store, then
handing the tries that won them to executors, slots claimed on the way and
waiting tries started when slots free up; timers as delayed queue messages.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from chalicelib.core.engine import (
    Command,
    Event,
    ExpandTask,
    FinishRun,
    Reconcile,
    RequeueTask,
    RunStateView,
    ScheduleTask,
    SetTaskState,
    StartTimer,
    decide,
    fail_try,
)
from chalicelib.core.messages import RunSnapshot, TimerFired, WorkerMessage
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.slots import (
    UNBOUNDED,
    SlotClaim,
    claims_for,
    decode_held,
    max_parallelism_bound,
    task_width_bound,
)
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.executors.base import DispatchError
from chalicelib.scheduler.map_windows import MapWindows
from chalicelib.scheduler.past import StorePastView, changed_tasks, wake_next_runs

log = logging.getLogger("slipstream.scheduler")

MAX_SQS_DELAY_SECONDS = 900
"""SQS delays a message at most 15 minutes; longer waits chain messages (see Scheduler.timer)."""

POOLS_TTL = dt.timedelta(minutes=1)

PROMOTE_PER_KEY = 5
"""Waiting tries looked at per counter when slots free up."""

EXPANSIONS_CACHED = 1024
"""Runs whose map counts a warm container remembers (they never change once set)."""


class Applying(MapWindows):
    """Decides what follows an event, writes it and dispatches the tries that
    won; finish_run (what an applied decision may lead to) comes from
    RunLifecycle above."""

    if TYPE_CHECKING:

        def finish_run(
            self, spec: DagSpec, run: DagRun, state: DagRunState, now: dt.datetime
        ) -> None: ...

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
            commands = self.window_follow_ups(spec, event, view, commands)
            effective = self._apply(spec, run, commands, now, view=view, direct=direct)
        if spec.past_wakes:  # depends_on_past: the next run may wait on this one
            wake_next_runs(self._scheduler, run, spec, changed_tasks(event, effective))
        return effective

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
            schedules, commands = self.through_windows(spec, run, schedules, commands, view)
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

                start_refused(self._scheduler, spec, run, cmd, now, attempt, exc)
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
