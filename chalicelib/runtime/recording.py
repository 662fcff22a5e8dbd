"""Recording a try's outcome and handing off to what follows, when AWS keeps
failing on the way.

The task has run; its outcome must land exactly once and its downstream must
start, whatever AWS answers. botocore retries each call (chalicelib.aws.retries).
A worker that gave up past those retries used to leave its try RUNNING until
the reaper failed it as a lost worker (charging the user's retries for AWS's
fault), or a downstream try QUEUED and never dispatched until reconciliation.
So each step here is repeated after an infrastructure error, with backoff
(``PERSIST_DELAYS``), and is safe to repeat:

- the outcome is written with one token on every repeat: a repeat that meets
  its own landed attempt counts as won (store.writes);
- a hand-off that was interrupted is finished again from the stored state:
  the counters settle by their own token, the engine decides the downstream
  from what is stored, and a downstream try left QUEUED (queued, maybe never
  dispatched) is dispatched again; the worker's claim keeps a second dispatch
  from running it twice.

Past the last delay the error is raised: the reaper and reconciliation are
the safety net behind this one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.aws.errors import describe, is_infrastructure_error
from chalicelib.core.engine import FinishRun, ScheduleTask, TaskFinished
from chalicelib.core.messages import TimerFired, WorkerMessage
from chalicelib.core.runs import TaskInstance
from chalicelib.core.states import WAITING_ON_TIMER, TaskState
from chalicelib.runtime.handoff import HandOffView
from chalicelib.runtime.outcome import TryResult
from chalicelib.runtime.outlets import emit_outlets

if TYPE_CHECKING:
    from chalicelib.runtime.worker import WorkerDeps

log = logging.getLogger("slipstream.worker")

PERSIST_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
"""Seconds between repeats of a step AWS refused past botocore's own retries:
31 s in all, well inside a worker Lambda's timeout."""

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerOutcome:
    """What happened, for logs, metrics and tests."""

    claimed: bool
    state: TaskState | None = None
    recorded: bool = False
    dispatched_next: int = 0


@dataclass(frozen=True)
class _Recorded:
    """A try whose outcome is recorded, and what the steps after need of it."""

    deps: WorkerDeps
    message: WorkerMessage
    spec: Any
    run: Any
    result: TryResult
    held: tuple[str, ...]
    pending: Any  # the recording write, whose counters are still owed

    def parts(self) -> tuple[Any, ...]:
        return (
            self.deps,
            self.message,
            self.spec,
            self.run,
            self.result,
            self.held,
            self.pending,
        )


def persistently(
    step: Callable[[], T], *, what: str, label: str, sleep: Callable[[float], None]
) -> T:
    """``step()``, repeated after each infrastructure error while delays remain."""
    for delay in (*PERSIST_DELAYS, None):
        try:
            return step()
        except Exception as exc:
            if delay is None or not is_infrastructure_error(exc):
                raise
            log.warning("%s: %s failed, again in %.0f s: %s", label, what, delay, describe(exc))
            sleep(delay)
    raise AssertionError("unreachable")  # the last round returns or raises


def _emit_asset_events(
    deps: WorkerDeps, message: WorkerMessage, run: Any, result: TryResult
) -> None:
    """The try's asset events (runtime.outlets), after its success is recorded.

    A bug here must not keep the run from moving on: the error is logged and
    the hand-off goes ahead (AWS errors are retried by ``persistently`` first)."""
    try:
        persistently(
            lambda: emit_outlets(
                deps.assets,
                result.asset_events,
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=message.task_id,
                map_index=message.map_index,
                try_number=message.try_number,
                when=result.end_date,
            ),
            what="recording asset events",
            label=message.label,
            sleep=deps.sleep,
        )
    except Exception:
        log.exception("%s: asset events not recorded", message.label)


def record_and_hand_off(
    deps: WorkerDeps,
    message: WorkerMessage,
    spec: Any,
    run: Any,
    result: TryResult,
    held: tuple[str, ...],
    *,
    settle_floor: int | None = None,
) -> WorkerOutcome:
    store = deps.store
    token = uuid.uuid4().hex  # the same on every repeat of the recording write

    def record() -> Any:
        return store.transition(
            run.dag_id,
            run.run_id,
            spec,
            message.task_id,
            message.map_index,
            expected=TaskState.RUNNING,
            new=result.state,
            try_number=message.try_number,
            now=result.end_date,
            defer_counters=True,  # one write on the hand-off path; counters just after
            slots=(),
            releases=held,  # the slots go back with the outcome, in one transaction
            token=token,
            **result.recorded(),
        )

    recorded = persistently(
        record, what="recording the outcome", label=message.label, sleep=deps.sleep
    )
    if not recorded.won:
        log.warning("%s: outcome %s not recorded: the try was reaped", message.label, result.state)
        return WorkerOutcome(claimed=True, state=result.state, recorded=False)
    if result.state is TaskState.SUCCESS and result.asset_events and deps.assets is not None:
        _emit_asset_events(deps, message, run, result)
    pending = recorded.pending
    if pending is not None:
        pending = replace(pending, settle_floor=settle_floor)
    done_try = _Recorded(deps, message, spec, run, result, held, pending)
    if result.state in WAITING_ON_TIMER:  # a retry, or a sensor's next poke
        persistently(
            lambda: _retry_later(done_try),
            what="scheduling the next try"
            if result.state is TaskState.UP_FOR_RETRY
            else "scheduling the next poke",
            label=message.label,
            sleep=deps.sleep,
        )
        return WorkerOutcome(claimed=True, state=result.state, recorded=True)
    try:
        dispatched = _hand_off(done_try)
    except Exception as exc:
        if not is_infrastructure_error(exc):
            raise
        log.warning(
            "%s: hand-off interrupted, finishing it from the stored state: %s",
            message.label,
            describe(exc),
        )
        dispatched = persistently(
            lambda: _hand_off_again(done_try),
            what="handing off",
            label=message.label,
            sleep=deps.sleep,
        )
    _after_hand_off(deps, message)
    return WorkerOutcome(
        claimed=True, state=result.state, recorded=True, dispatched_next=dispatched
    )


def _retry_later(done_try: _Recorded) -> None:
    """Counters, freed slots and the retry's timer; each safe to repeat (a
    second timer finds the retry already queued and changes nothing)."""
    deps, message, _, run, result, held, pending = done_try.parts()
    deps.store.settle_counters(run.dag_id, run.run_id, pending)
    deps.scheduler.freed(held, known=run)
    assert result.next_try_at is not None
    deps.scheduler.timer(
        TimerFired(
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=message.task_id,
            map_index=message.map_index,
        ),
        result.next_try_at,
        result.end_date,
    )
    _after_hand_off(deps, message)


def _hand_off(done_try: _Recorded) -> int:
    """The fast path: decide the downstream from what this worker knows."""
    deps, message, spec, run, result, held, pending = done_try.parts()
    store, scheduler = deps.store, deps.scheduler
    done = TaskInstance(
        task_id=message.task_id,
        map_index=message.map_index,
        state=result.state,
        try_number=message.try_number,
        end_date=result.end_date,
        result_length=result.result_length,
        skip_downstream=result.skip_downstream,
    )
    # Downstream of a map decides from its tally, a wide join from its counts
    # (core.fan_in): move them (with the run's counters) first; the settle
    # answers with them. Otherwise the counters wait.
    settled = None
    if message.map_index >= 0 or pending.fan_in_moves:
        settled = store.settle_counters(run.dag_id, run.run_id, pending)
    mapped = settled.mapped if settled is not None else None
    fan_in = settled.fan_in if settled is not None else None
    view = HandOffView(spec, store.run_view(run.dag_id, run.run_id, spec), done, mapped, fan_in)
    effective = scheduler.advance(
        run, spec, TaskFinished(message.task_id, message.map_index), view=view, direct=True
    )
    # After the hand-off (the next try is on its way); before the counters, so
    # a try waiting for the slot this one gave back starts as soon as it can.
    scheduler.freed(held, known=run)
    if settled is None:
        settled = store.settle_counters(run.dag_id, run.run_id, pending)
    _finish_if_over(deps, spec, run, result, settled.progress, effective)
    return sum(1 for c in effective if isinstance(c, ScheduleTask))


def _hand_off_again(done_try: _Recorded) -> int:
    """The slow path, after an interrupted hand-off: everything read back."""
    deps, message, spec, run, result, held, pending = done_try.parts()
    store, scheduler = deps.store, deps.scheduler
    settled = store.settle_counters(run.dag_id, run.run_id, pending)
    effective = scheduler.advance(run, spec, TaskFinished(message.task_id, message.map_index))
    again = scheduler.redispatch_queued(run, spec, spec.task(message.task_id).downstream)
    scheduler.freed(held, known=run)
    _finish_if_over(deps, spec, run, result, settled.progress, effective)
    return sum(1 for c in effective if isinstance(c, ScheduleTask)) + len(again)


def _finish_if_over(
    deps: WorkerDeps, spec: Any, run: Any, result: TryResult, progress: Any, effective: list[Any]
) -> None:
    if progress.outcome is not None and not any(isinstance(c, FinishRun) for c in effective):
        deps.scheduler.finish_run(spec, run, progress.outcome, result.end_date)


def _after_hand_off(deps: WorkerDeps, message: WorkerMessage) -> None:
    """Off the hand-off path (the next hand-off reads none); a refused read
    only leaves the cached pool sizes a little older. Settle logs are
    trimmed here too: a refused trim is made by a later settle's worker."""
    for what, chore in (
        ("pool sizes not refreshed", deps.scheduler.refresh_pools),
        ("settle log not trimmed", deps.store.tidy_settles),
    ):
        try:
            chore()
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("%s: %s: %s", message.label, what, describe(exc))
