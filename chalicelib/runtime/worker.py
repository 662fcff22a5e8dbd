"""The worker: runs one try, records it, and hands off to the next tasks.

The same function runs in the worker Lambda, in an ECS container and in the
local stack's warm worker processes. Its steps, each safe to repeat:

1. claim the try (QUEUED -> RUNNING, or NONE -> RUNNING for a try another
   worker's hand-off dispatched directly; one conditional write): a duplicate
   invocation loses the claim and does nothing;
2. load the run's pinned code bundle (cached per warm container) and run the
   operator through ``execute_try`` while a thread keeps the heartbeat fresh
   (its first beat takes the heartbeat lease: a try that ends before it
   never writes the reaper's index);
3. record the outcome with one conditional write (with the slot counters it
   gives back, if it held any, in the same transaction); a mapped instance
   then moves its map's tally (an atomic ADD whose answer says whether the
   map is done);
4. advance the run's downstream tasks itself (Airflow's mini-scheduler) and
   dispatch their first tries directly, so the hand-off costs the record,
   perhaps the tally, and an invoke; the run's counters move after that.
If the worker dies after 1, the reaper finds the stale heartbeat (or, had it
not beaten yet, the tick's reconciliation of the stalled run does); after 3,
the tick finds the run stalled, recounts it from its instances and
re-evaluates it (``Reconcile``). No
per-task safety-net message is sent: that would cost a queue message and a
scheduler invocation for every task to cover a rare crash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.aws.errors import describe, is_infrastructure_error
from chalicelib.core.engine import Reconcile, TaskFinished
from chalicelib.core.messages import WorkerMessage
from chalicelib.core.states import TaskState
from chalicelib.runtime.dag_callbacks import DAG_CALLBACK_TASK, run_dag_callbacks
from chalicelib.runtime.deadline_callbacks import DEADLINE_CALLBACK_TASK, run_deadline_callback
from chalicelib.runtime.executing import (
    TryRequest,
    TryResult,
    execute_try,
    infrastructure_failure,
)
from chalicelib.runtime.isolated_tries import run_isolated_dag_callbacks, run_isolated_try
from chalicelib.runtime.isolation import TaskCredentials, failed_try
from chalicelib.runtime.recording import WorkerOutcome, persistently, record_and_hand_off
from chalicelib.runtime.task_log import TaskLogSink, capture_try
from chalicelib.runtime.timeout import TryCancel
from chalicelib.runtime.try_ports import try_ports
from chalicelib.runtime.xcom import XComStore
from chalicelib.scheduler.service import Scheduler
from chalicelib.store.base import StateStore
from chalicelib.store.usage import USAGE_EVENT, USAGE_LOGGER

log = logging.getLogger("slipstream.worker")

HEARTBEAT_SECONDS = float(os.environ.get("SLIPSTREAM_HEARTBEAT_SECONDS", "30"))


class BundleLoader(Protocol):
    def load_dag(self, bundle_key: str, fileloc: str, dag_id: str) -> Any: ...


class TaskLogs(Protocol):
    """Makes the sink of one try's log (CloudWatch: ``store.task_logs.TaskLogStore``)."""

    def sink(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
    ) -> TaskLogSink: ...


class Meter(Protocol):
    """Counts the AWS calls of the threads it is active on (store.usage.CallMeter)."""

    def active(self) -> contextlib.AbstractContextManager[Any]: ...

    def record(self, service: str, operation: str, times: int = 1) -> None: ...

    def snapshot(self) -> dict[str, dict[str, int]]: ...


@dataclass
class WorkerDeps:
    """What a worker talks to; built once per warm container from the environment."""

    store: StateStore
    scheduler: Scheduler
    bundles: BundleLoader
    xcoms: Callable[[str, str], XComStore]
    clock: Callable[[], dt.datetime]
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    task_logs: TaskLogs | None = None  # None: the try's output goes to the worker's own
    meter: Callable[[], Meter] | None = None  # None: the try's AWS calls are not counted
    sleep: Callable[[float], None] = time.sleep  # between repeats of a step AWS refused
    assets: Any = None  # scheduler.assets.AssetService; None: outlets record nothing
    s3_watches: Any = None  # store.s3_watches.S3WatchStore; None: sensors only poll
    # The tenant's credentials (STS, tagged with the tenant) for user code run in a
    # child interpreter (runtime.isolation); None: user code runs in this process.
    task_credentials: TaskCredentials | None = None


_default_deps: WorkerDeps | None = None
_default_lock = threading.Lock()


def default_deps() -> WorkerDeps:
    """Adapters from the environment, built on first use and kept while warm."""
    global _default_deps
    with _default_lock:
        if _default_deps is None:
            from chalicelib.wiring import build_worker_deps

            _default_deps = build_worker_deps()
        return _default_deps


def forget_default_deps() -> None:
    """Drop the adapters built from the environment (``wiring.reset``)."""
    global _default_deps
    with _default_lock:
        _default_deps = None


def handle_worker_message(message: WorkerMessage, deps: WorkerDeps | None = None) -> WorkerOutcome:
    deps = deps or default_deps()
    store, scheduler = deps.store, deps.scheduler
    spec = persistently(
        lambda: scheduler.specs.get(message.dag_id, message.version),
        what="reading the DAG version",
        label=message.label,
        sleep=deps.sleep,
    )
    if message.run is not None and message.task_id != DAG_CALLBACK_TASK:
        run = message.run.to_run(message.dag_id, message.run_id)  # no read on the hot path
    else:
        run = persistently(
            lambda: store.get_run(message.dag_id, message.run_id),
            what="reading the run",
            label=message.label,
            sleep=deps.sleep,
        )
    if run is None:
        log.warning("no run for %s", message.label)
        return WorkerOutcome(claimed=False)
    if message.task_id == DAG_CALLBACK_TASK:
        return _dag_callbacks(deps, message, spec, run)
    if message.task_id == DEADLINE_CALLBACK_TASK:
        return WorkerOutcome(claimed=run_deadline_callback(deps, message, spec, run))
    meter = deps.meter() if deps.meter is not None else None
    with meter.active() if meter is not None else contextlib.nullcontext():
        return _claim_and_run(deps, message, spec, run, meter)


def _claim_and_run(
    deps: WorkerDeps, message: WorkerMessage, spec: Any, run: Any, meter: Meter | None
) -> WorkerOutcome:
    store = deps.store
    now = deps.clock()
    token = uuid.uuid4().hex  # a repeat after an AWS error is the same claim
    claim = persistently(
        lambda: store.claim(
            run.dag_id,
            run.run_id,
            spec,
            message.task_id,
            message.map_index,
            message.try_number,
            now,
            direct=message.direct,
            token=token,
        ),
        what="claiming the try",
        label=message.label,
        sleep=deps.sleep,
    )
    if not claim.won:
        log.info("%s: claim lost, another worker has it (or it was reaped)", message.label)
        if message.direct:
            _redecide_if_assumed_wrong(deps, message, spec, run)
        return WorkerOutcome(claimed=False)
    held = claim.instance.slots if claim.instance is not None else ()
    retry_base = claim.instance.retry_base if claim.instance is not None else 0
    infra_failures = claim.instance.infra_failures if claim.instance is not None else 0
    first_poke_at = claim.instance.first_poke_at if claim.instance is not None else None
    floor = _settle_floor(deps, message)
    sink = _try_log_sink(deps, message)
    started = time.monotonic()
    try:
        result = _run_try(
            deps, message, spec, run, sink, meter, retry_base, infra_failures, first_poke_at
        )
        return record_and_hand_off(deps, message, spec, run, result, held, settle_floor=floor)
    finally:
        if sink is not None:
            _close_log(sink, meter, message, time.monotonic() - started)


def _settle_floor(deps: WorkerDeps, message: WorkerMessage) -> int | None:
    """The run's settle count before this try records anything (store.settles):
    read now, off the hand-off path. Unreadable, the settle is only more cautious."""
    try:
        return deps.store.settle_floor(message.dag_id, message.run_id)
    except Exception as exc:
        if not is_infrastructure_error(exc):
            raise
        log.warning("%s: settle count not read: %s", message.label, describe(exc))
        return None


def _redecide_if_assumed_wrong(
    deps: WorkerDeps, message: WorkerMessage, spec: Any, run: Any
) -> None:
    """A direct dispatch assumes its task never ran (the hand-off reads nothing,
    see runtime.handoff). An operator's clear makes that wrong: the task waits
    at a later try, and the try dispatched for it can never be claimed. Then
    decide it again from its upstream, reading what is really stored. A lost
    claim of a try someone else started (a duplicate) reads one item and stops."""
    ti = deps.store.get_instance(run.dag_id, run.run_id, message.task_id, message.map_index)
    if ti is None or ti.state is not TaskState.NONE or ti.try_number < message.try_number:
        return
    upstream = spec.tasks[message.task_id].upstream
    unmapped = [up for up in upstream if spec.tasks[up].mapping is None]
    event = TaskFinished(unmapped[0], -1) if unmapped else Reconcile()
    log.info("%s: waits at try %d; deciding it again", message.label, ti.try_number + 1)
    deps.scheduler.advance(run, spec, event)


def _close_log(
    sink: TaskLogSink, meter: Meter | None, message: WorkerMessage, seconds: float
) -> None:
    """The try's last line says what AWS calls its worker made (the flush that
    carries it is one of them), then the log is shipped."""
    if meter is not None:
        meter.record("logs", "PutLogEvents")
        fields = {
            "event": USAGE_EVENT,
            "try_number": message.try_number,
            "task_id": message.task_id,
            "map_index": message.map_index,
            "seconds": round(seconds, 3),
            "calls": meter.snapshot(),
        }
        sink.emit_record(fields, logger=USAGE_LOGGER)
    sink.flush()


def _dag_callbacks(deps: WorkerDeps, message: WorkerMessage, spec: Any, run: Any) -> WorkerOutcome:
    bundle_key = deps.scheduler.specs.bundle_key(message.dag_id, message.version)
    if bundle_key is None or spec.fileloc is None or not run.state.finished:
        log.warning("%s: no callbacks to run (no bundle, or the run is not over)", message.label)
        return WorkerOutcome(claimed=False)
    if deps.task_credentials is not None:
        ran = run_isolated_dag_callbacks(deps, message, spec, run, bundle_key)
    else:
        ran = run_dag_callbacks(deps.bundles.load_dag(bundle_key, spec.fileloc, spec.dag_id), run)
    log.info("%s: ran %d DAG callbacks for a %s run", message.label, ran, run.state.value)
    return WorkerOutcome(claimed=True, recorded=False)


def _run_try(
    deps: WorkerDeps,
    message: WorkerMessage,
    spec: Any,
    run: Any,
    sink: TaskLogSink | None,
    meter: Meter | None,
    retry_base: int = 0,
    infra_failures: int = 0,
    first_poke_at: dt.datetime | None = None,
) -> TryResult:
    bundle_key = deps.scheduler.specs.bundle_key(message.dag_id, message.version)
    stop = threading.Event()
    cancel = TryCancel()
    beat = threading.Thread(
        target=_heartbeat,
        args=(deps, message, stop, sink, meter, cancel),
        name=f"heartbeat-{message.task_id}",
        daemon=True,
    )
    beat.start()

    ports = try_ports(deps, message, run)

    def request_for(dag: Any) -> TryRequest:
        return TryRequest(
            dag=dag,
            spec=spec,
            run=run,
            task_id=message.task_id,
            map_index=message.map_index,
            try_number=message.try_number,
            tenant=run.tenant,
            retry_base=retry_base,
            infra_failures=infra_failures,
            first_poke_at=first_poke_at,
            cancel=cancel,
            triggering_asset_events=ports.asset_events,
        )

    try:
        if deps.task_credentials is not None and bundle_key is not None and spec.fileloc:
            return run_isolated_try(deps, request_for(None), bundle_key, sink, ports)
        # The bundle's import-time output belongs to the try too; the log is
        # shipped after the hand-off, with the try's AWS calls (_close_log).
        with capture_try(sink, flush=False):
            try:
                if bundle_key is None:
                    raise RuntimeError(f"DAG version {message.version} has no code bundle")
                if spec.fileloc is None:
                    raise RuntimeError(f"DAG {spec.dag_id!r} has no file location in its spec")
                dag = deps.bundles.load_dag(bundle_key, spec.fileloc, spec.dag_id)
            except Exception as exc:  # a broken bundle fails the try like any task error
                if is_infrastructure_error(exc):  # ... but S3 throttled is not the task's fault
                    now = deps.clock()
                    return infrastructure_failure(request_for(None), now, now, exc)
                return _load_failure(deps, message, spec, run, exc, retry_base)
            request = request_for(dag)
            with ports.in_context():
                return execute_try(request, deps.xcoms(run.dag_id, run.run_id), clock=deps.clock)
    finally:
        stop.set()


def _try_log_sink(deps: WorkerDeps, message: WorkerMessage) -> TaskLogSink | None:
    """The try's log sink; a log store that cannot make one costs the log, not the try."""
    if deps.task_logs is None:
        return None
    try:
        return deps.task_logs.sink(
            message.dag_id, message.run_id, message.task_id, message.map_index, message.try_number
        )
    except Exception as exc:
        log.warning("%s: no task log for this try: %s: %s", message.label, type(exc).__name__, exc)
        return None


def _heartbeat(
    deps: WorkerDeps,
    message: WorkerMessage,
    stop: threading.Event,
    sink: TaskLogSink | None,
    meter: Meter | None = None,
    cancel: TryCancel | None = None,
) -> None:
    with meter.active() if meter is not None else contextlib.nullcontext():
        _beat(deps, message, stop, sink, cancel)


def _beat(
    deps: WorkerDeps,
    message: WorkerMessage,
    stop: threading.Event,
    sink: TaskLogSink | None,
    cancel: TryCancel | None = None,
) -> None:
    while not stop.wait(deps.heartbeat_seconds):
        if sink is not None:
            sink.flush()  # before the beat: a running try's log can be followed live
        try:
            alive = deps.store.heartbeat(
                message.dag_id,
                message.run_id,
                message.task_id,
                message.map_index,
                message.try_number,
                deps.clock(),
            )
        except Exception as exc:
            # One missed beat is harmless (the lease lasts minutes); a heartbeat
            # thread that died on it would have the try reaped as lost.
            log.warning("%s: heartbeat missed, trying again: %s", message.label, describe(exc))
            continue
        if not alive:
            # Marked failed or success, cleared, reaped: as Airflow's task runner
            # does, stop the try and its processes rather than let it run on.
            log.warning("%s: no longer running (marked or reaped); stopping it", message.label)
            if cancel is not None:
                cancel.cancel("the try is no longer running (marked, cleared or reaped)")
            return


def _load_failure(
    deps: WorkerDeps,
    message: WorkerMessage,
    spec: Any,
    run: Any,
    exc: Exception,
    retry_base: int = 0,
) -> TryResult:
    now = deps.clock()
    return failed_try(
        spec,
        run,
        message.task_id,
        message.try_number,
        retry_base,
        now,
        now,
        f"{type(exc).__name__}: could not load the DAG code: {exc}",
    )
