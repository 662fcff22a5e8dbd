"""``dag.test()`` and ``slipstream dags test``: one run, to the end, in this process.

The same engine that the serverless scheduler calls decides what runs; tries
execute in a thread pool (up to ``max_active_tasks`` at once) through the
same ``execute_try`` the worker Lambda uses. Retry delays are skipped on a
virtual clock unless ``real_time=True``, so a DAG with a five-minute retry
delay still tests in seconds while every timestamp it sees stays coherent.

Skipping time never changes an outcome: a timer (a retry, ``dagrun_timeout``)
fires when it is due even while tries run, as the deployed scheduler's timers
do, and a run that ends (timed out, or interrupted) stops the tries still
running, processes included, instead of waiting for them.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pendulum

from chalicelib.core.engine import (
    Command,
    Event,
    FinishRun,
    RetryDue,
    RunStarted,
    ScheduleTask,
    StartTimer,
    TaskFinished,
    TimeoutCheck,
    decide,
)
from chalicelib.core.errors import DagValidationError, SlipstreamError
from chalicelib.core.past import NO_HISTORY  # dags test: one run, no earlier runs
from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import WAITING_ON_TIMER, DagRunState, TaskState
from chalicelib.local.clock import Clock, VirtualClock, utc_now
from chalicelib.local.deadlines import judge_at_end
from chalicelib.local.run_state import InMemoryRunState, StaleState
from chalicelib.runtime.dag_callbacks import run_dag_callbacks
from chalicelib.runtime.executing import TryRequest, TryResult, execute_try
from chalicelib.runtime.timeout import TryCancel
from chalicelib.runtime.xcom import InMemoryXComStore
from chalicelib.secrets.local_files import aws_configured, local_secrets


@dataclass(frozen=True)
class TryRecord:
    """What one try did, for the summary."""

    label: str
    try_number: int
    state: TaskState
    seconds: float
    error: str | None = None
    retry_delay: float | None = None


@dataclass
class DagTestResult:
    """The outcome of ``dag.test()``: Airflow state names throughout."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]
    tries: dict[str, int]
    logical_date: dt.datetime
    wall_seconds: float
    history: list[TryRecord] = field(default_factory=list)
    reason: str | None = None  # why the run ended as it did, when the engine said (a timeout)
    # Mapped instances whose task has a map_index_template: label -> rendered name
    rendered_map_indexes: dict[str, str] = field(default_factory=dict)
    missed_deadlines: list[Any] = field(default_factory=list)  # local/deadlines.py

    @property
    def succeeded(self) -> bool:
        return self.state == DagRunState.SUCCESS.value

    @property
    def errors(self) -> dict[str, str]:
        """The last error of each instance that ended failed."""
        last: dict[str, str] = {}
        for record in self.history:
            if record.error:
                last[record.label] = record.error
        return {k: v for k, v in last.items() if self.task_states.get(k) == "failed"}


def run_dag_test(
    dag: Any,
    *,
    logical_date: dt.datetime | str | None = None,
    conf: Mapping[str, Any] | None = None,
    real_time: bool = False,
    clock: Clock | None = None,
    show: bool = True,
    reporter: Any = None,
    variables_file: str | None = None,
    connections_file: str | None = None,
) -> DagTestResult:
    """Run one manual DAG run to the end and report how it went.

    ``show`` prints the live table, task logs and the summary (a reporter
    object can replace the default one); invalid DAGs raise before anything runs.
    ``variables_file`` / ``connections_file`` (Airflow's JSON, YAML or .env
    formats) are read before the environment and the store, as in Airflow; the
    store is skipped when this machine has no AWS settings at all.
    """
    problems = dag.problems()
    if problems:
        raise DagValidationError(problems)
    spec = dag.to_spec(validate=False)
    if reporter is None and show:
        from chalicelib.local.display import TableReporter

        reporter = TableReporter()
    with local_secrets(variables_file, connections_file, use_store=aws_configured()):
        return LocalDagRun(
            dag,
            spec,
            logical_date=logical_date,
            conf=conf,
            real_time=real_time,
            clock=clock,
            reporter=reporter,
        ).run()


class LocalDagRun:
    """One run driven by the engine over in-memory state and a thread pool."""

    def __init__(
        self,
        dag: Any,
        spec: DagSpec,
        *,
        logical_date: dt.datetime | str | None = None,
        conf: Mapping[str, Any] | None = None,
        real_time: bool = False,
        clock: Clock | None = None,
        reporter: Any = None,
    ):
        self.dag = dag
        self.spec = spec
        self.clock = VirtualClock(clock or utc_now, real_time)
        self.reporter = reporter
        self.lock = threading.Lock()  # guards state for a reporter reading from another thread
        self.run_record = self._make_run(logical_date, dict(conf or {}))
        self.state = InMemoryRunState(spec, self.run_record)
        self.xcoms = InMemoryXComStore()
        self.ready: list[tuple[int, int, ScheduleTask]] = []
        self.timers: list[tuple[dt.datetime, int, Event]] = []
        self.sequence = itertools.count()
        self.history: list[TryRecord] = []
        self.reason: str | None = None

    # ------------------------------------------------------------ set-up

    def _make_run(self, logical_date: dt.datetime | str | None, conf: dict[str, Any]) -> DagRun:
        resolve = getattr(self.dag, "resolve_params", None)
        if callable(resolve):
            resolve(conf)  # a bad conf fails here, before anything runs
        now = self.clock()
        logical = self._logical_date(logical_date, now)
        interval = self.spec.timetable.infer_manual_data_interval(run_after=logical)
        return DagRun(
            dag_id=self.spec.dag_id,
            run_id=make_run_id(RunType.MANUAL, logical),
            run_type=RunType.MANUAL,
            logical_date=logical,
            data_interval_start=interval.start,
            data_interval_end=interval.end,
            run_after=logical,
            version=self.spec.content_hash,
            conf=conf,
            state=DagRunState.RUNNING,
            start_date=now,
        )

    def _logical_date(self, value: dt.datetime | str | None, now: dt.datetime) -> dt.datetime:
        if value is None:
            return now
        if isinstance(value, str):
            try:
                parsed = pendulum.parse(value, tz=self.spec.timezone)
            except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
                raise SlipstreamError(f"bad logical date {value!r}: {exc}") from None
            if not isinstance(parsed, dt.datetime):
                raise SlipstreamError(f"bad logical date {value!r}: not a date and time")
            value = parsed
        if value.tzinfo is None:
            value = pendulum.instance(value, tz=self.spec.timezone)
        return value.astimezone(dt.UTC)

    # ------------------------------------------------------------- loop

    def run(self) -> DagTestResult:
        started = time.perf_counter()
        workers = max(1, min(self.spec.max_active_tasks, 64))
        if self.spec.dagrun_timeout is not None and self.run_record.start_date is not None:
            due = self.run_record.start_date + dt.timedelta(seconds=self.spec.dagrun_timeout)
            heapq.heappush(self.timers, (due, next(self.sequence), TimeoutCheck()))
        if self.reporter is not None:
            self.reporter.start(self)
        try:
            with ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="slipstream-try"
            ) as pool:
                self._drive(pool, workers)
        finally:
            if self.reporter is not None:
                self.reporter.stop(self)
        self._run_dag_callback()
        result = self._result(time.perf_counter() - started)
        result.missed_deadlines = judge_at_end(self.dag, self.spec, self.state.run)
        if self.reporter is not None:
            self.reporter.summary(result, self)
        return result

    def _drive(self, pool: ThreadPoolExecutor, workers: int) -> None:
        running: dict[Future[TryResult], tuple[ScheduleTask, TryCancel]] = {}
        try:
            self._loop(pool, workers, running)
        except BaseException:
            self._stop_tries(running, "the test run was interrupted")
            raise
        self._stop_tries(running, f"the run ended {self.state.run.state.value}")

    def _stop_tries(
        self, running: dict[Future[TryResult], tuple[ScheduleTask, TryCancel]], reason: str
    ) -> None:
        """Tries still running when the run is over (a dagrun_timeout) or interrupted
        are stopped, their processes killed after the grace, not waited for."""
        for _, cancel in running.values():
            cancel.cancel(f"{reason}: {self.reason}" if self.reason else reason)

    def _loop(
        self,
        pool: ThreadPoolExecutor,
        workers: int,
        running: dict[Future[TryResult], tuple[ScheduleTask, TryCancel]],
    ) -> None:
        self._act(
            decide(self.spec, self.state.run, RunStarted(), self.state, self.clock(), NO_HISTORY)
        )
        while not self._over():
            self._fire_due_timers()
            held_back: list[Any] = []
            while self.ready and len(running) < workers and not self._over():
                entry = heapq.heappop(self.ready)
                cmd = entry[2]
                if self._at_task_limit(cmd.task_id, running):
                    held_back.append(entry)  # until an instance of its task ends
                    continue
                cancel = TryCancel()
                future = self._dispatch(pool, cmd, cancel)
                if future is not None:
                    running[future] = (cmd, cancel)
            for entry in held_back:
                heapq.heappush(self.ready, entry)
            if self._over():
                break
            timeout = self._wait_timeout(bool(running))
            if running and timeout != 0.0:
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    self._on_try_done(running.pop(future)[0], future)
                continue
            if not self.timers:
                stuck = ", ".join(ti.label for ti in self.state.unfinished())
                raise SlipstreamError(f"run is stuck with nothing to do: {stuck}")
            due, _, event = heapq.heappop(self.timers)
            if self.clock.real_time:
                pause = (due - self.clock()).total_seconds()
                if pause > 0:
                    time.sleep(pause)  # real_time=True asked to wait out the delay
            else:
                self.clock.advance_to(due)
            self._act(
                decide(self.spec, self.state.run, event, self.state, self.clock(), NO_HISTORY)
            )

    def _at_task_limit(
        self, task_id: str, running: dict[Future[TryResult], tuple[ScheduleTask, TryCancel]]
    ) -> bool:
        """max_active_tis_per_dag / _per_dagrun: in one run both cap the task's
        instances running at once (the deployed scheduler claims slots instead)."""
        task = self.spec.tasks[task_id]
        limits = [
            n
            for n in (task.max_active_tis_per_dag, task.max_active_tis_per_dagrun)
            if n is not None
        ]
        if not limits:
            return False
        active = sum(1 for cmd, _ in running.values() if cmd.task_id == task_id)
        return active >= min(limits)

    def _over(self) -> bool:
        return self.state.run.state.finished

    def _fire_due_timers(self) -> None:
        """Act on every timer already due, before anything else happens: a run past
        its dagrun_timeout starts no task and records no late result, as deployed."""
        while self.timers and self.timers[0][0] <= self.clock() and not self._over():
            _, _, event = heapq.heappop(self.timers)
            self._act(
                decide(self.spec, self.state.run, event, self.state, self.clock(), NO_HISTORY)
            )

    def _wait_timeout(self, running: bool) -> float | None:
        """How long to wait for running tries before the next timer is due.

        On the virtual clock a timer only jumps time forward when nothing is
        running, so skipped delays never shorten a real try; while tries run,
        a timer fires when it is really due (a dagrun_timeout still applies).
        """
        if not self.timers:
            return None
        due = self.timers[0][0]
        now = self.clock()
        if due <= now:
            return 0.0
        if self.clock.real_time or running:
            return (due - now).total_seconds()
        return 0.0

    def _dispatch(
        self, pool: ThreadPoolExecutor, cmd: ScheduleTask, cancel: TryCancel
    ) -> Future[TryResult] | None:
        now = self.clock()
        with self.lock:
            try:
                self.state.transition(
                    cmd.task_id, cmd.map_index, TaskState.SCHEDULED, TaskState.QUEUED, queued_at=now
                )
                ti = self.state.transition(
                    cmd.task_id, cmd.map_index, TaskState.QUEUED, TaskState.RUNNING, start_date=now
                )
            except StaleState:
                return None  # skipped by a dagrun timeout while it waited for a slot
        request = TryRequest(
            dag=self.dag,
            spec=self.spec,
            run=self.state.run,
            task_id=cmd.task_id,
            map_index=cmd.map_index,
            try_number=cmd.try_number,
            tenant=self.state.run.tenant,
            first_poke_at=ti.first_poke_at,
            cancel=cancel,
        )
        return pool.submit(execute_try, request, self.xcoms, clock=self.clock)

    def _on_try_done(self, cmd: ScheduleTask, future: Future[TryResult]) -> None:
        result = future.result()  # execute_try reports task errors as outcomes, never raises
        self._fire_due_timers()  # a result that comes after the run's deadline is stale
        label = cmd.task_id if cmd.map_index < 0 else f"{cmd.task_id}[{cmd.map_index}]"
        self.history.append(
            TryRecord(
                label,
                cmd.try_number,
                result.state,
                (result.end_date - result.start_date).total_seconds(),
                result.error,
                result.retry_delay_seconds,
            )
        )
        with self.lock:
            try:
                self.state.transition(
                    cmd.task_id,
                    cmd.map_index,
                    TaskState.RUNNING,
                    result.state,
                    **result.recorded(),
                )
            except StaleState:
                return  # the run timed out meanwhile; this result no longer counts
        if self.reporter is not None:
            self.reporter.try_finished(self, self.history[-1])
        if result.state in WAITING_ON_TIMER:  # a retry or a sensor's next poke
            assert result.next_try_at is not None
            event = RetryDue(cmd.task_id, cmd.map_index)
            heapq.heappush(self.timers, (result.next_try_at, next(self.sequence), event))
            return
        event_done = TaskFinished(cmd.task_id, cmd.map_index)
        self._act(
            decide(self.spec, self.state.run, event_done, self.state, self.clock(), NO_HISTORY)
        )

    def _act(self, commands: list[Command]) -> None:
        now = self.clock()
        with self.lock:
            follow_up = self.state.apply(commands, now)
        for cmd in follow_up:
            if isinstance(cmd, ScheduleTask):
                heapq.heappush(self.ready, (-cmd.priority, next(self.sequence), cmd))
            elif isinstance(cmd, StartTimer):
                heapq.heappush(self.timers, (cmd.due, next(self.sequence), cmd.event))
            elif isinstance(cmd, FinishRun):
                with self.lock:
                    self.state.finish(cmd.state, now)
                self.reason = cmd.reason or None
        if not self.state.run.state.finished:
            outcome = self.state.progress.outcome
            if outcome is not None:
                with self.lock:
                    self.state.finish(outcome, now)

    # ---------------------------------------------------------- results

    def _run_dag_callback(self) -> None:
        """DAG-level on_success/on_failure callbacks, as Airflow runs them after the run."""
        run_dag_callbacks(self.dag, self.state.run)

    def _result(self, wall: float) -> DagTestResult:
        states: dict[str, str] = {}
        tries: dict[str, int] = {}
        rendered: dict[str, str] = {}
        for ti in self.state.task_instances():
            states[ti.label] = ti.state.value
            tries[ti.label] = ti.try_number
            if ti.rendered_map_index is not None:
                rendered[ti.label] = ti.rendered_map_index
        assert self.state.run.logical_date is not None
        return DagTestResult(
            dag_id=self.spec.dag_id,
            run_id=self.state.run.run_id,
            state=self.state.run.state.value,
            task_states=states,
            tries=tries,
            logical_date=self.state.run.logical_date,
            wall_seconds=wall,
            history=self.history,
            reason=self.reason,
            rendered_map_indexes=rendered,
        )
