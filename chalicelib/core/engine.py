"""The scheduling decision: given what just happened in a run, what must change.

``decide`` is a pure function. It reads the run's state through a narrow,
read-only view and returns commands; an adapter (the in-memory runner, the
DynamoDB store) applies them with conditional writes. Deciding and doing are
separate, as in Chalice's deployer planner/executor.

Work is bounded by what the event touches: "task X finished" evaluates only
X's direct downstream tasks, and then only the tasks a cascade of skips or
upstream failures reaches. Mapped tasks are read as per-state counts, so a
10,000-way map costs O(1) per evaluation of its downstream; so is a wide
join over many distinct tasks (core.fan_in), whose upstream states are
counted on the run instead of read one by one.
"""

from __future__ import annotations

import datetime as dt

from chalicelib.core.commands import (
    Command,
    Event,
    ExpandTask,
    FinishRun,
    PastChanged,
    Reconcile,
    RequeueTask,
    RetryDue,
    RunStarted,
    RunStateView,
    ScheduleTask,
    SetTaskState,
    StartTimer,
    TaskFinished,
    TaskSummary,
    TimeoutCheck,
)
from chalicelib.core.evaluation import MAX_MAP_LENGTH, WAITING_FOR_BRANCH, Evaluation, schedule
from chalicelib.core.group_mapping import finished_targets, map_group
from chalicelib.core.past import PastView
from chalicelib.core.retries import decide_after_failure
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.spec import DagSpec, TaskSpec
from chalicelib.core.states import (
    FINISHED_TASK_STATES,
    WAITING_ON_TIMER,
    DagRunState,
    TaskState,
)
from chalicelib.core.trigger_rules import TriggerRule

__all__ = [  # the engine's vocabulary, importable from here as before
    "HEARTBEAT_LOST",
    "MAX_MAP_LENGTH",
    "QUEUED_TIMEOUT",
    "WAITING_FOR_BRANCH",
    "Command",
    "Event",
    "ExpandTask",
    "FinishRun",
    "PastChanged",
    "PastView",
    "Reconcile",
    "RequeueTask",
    "RetryDue",
    "RunStarted",
    "RunStateView",
    "ScheduleTask",
    "SetTaskState",
    "StartTimer",
    "TaskFinished",
    "TaskSummary",
    "TimeoutCheck",
    "decide",
    "fail_try",
]

QUEUED_TIMEOUT = dt.timedelta(seconds=600)
"""Airflow's ``[scheduler] task_queued_timeout``: a try queued this long without a
worker starting it was lost on its way, and reconciliation dispatches it again."""

HEARTBEAT_LOST = "worker heartbeat lost"
"""Why a try whose worker went silent failed (the reaper's and reconciliation's reason)."""


# ------------------------------------------------------------------ decide


def decide(
    spec: DagSpec,
    run: DagRun,
    event: Event,
    view: RunStateView,
    now: dt.datetime,
    past: PastView | None = None,
) -> list[Command]:
    """The commands that follow from ``event`` in ``run`` at time ``now``.

    ``past`` is the view of earlier runs that ``depends_on_past`` tasks need
    (core.past); a DAG without such tasks never reads it.
    """
    if run.state.finished:
        return []
    evaluation = Evaluation(spec, view, run=run, past=past)
    if isinstance(event, RunStarted):
        starters = [tid for tid in spec.tasks if _starts_with_run(spec.tasks[tid])]
        return evaluation.run(starters)
    if isinstance(event, PastChanged):
        return evaluation.run([tid for tid in event.task_ids if tid in spec.tasks])
    if isinstance(event, TaskFinished):
        return _on_task_finished(spec, event, view, evaluation)
    if isinstance(event, RetryDue):
        return _on_retry_due(spec, event, view, now)
    if isinstance(event, Reconcile):
        unfinished = list(view.unfinished())  # one read of the whole run
        commands: list[Command] = []
        if event.heartbeat_timeout is not None:
            commands += _fail_lost_starts(spec, run, unfinished, now, event.heartbeat_timeout)
        queued_timeout = event.queued_timeout or QUEUED_TIMEOUT
        return commands + _on_reconcile(spec, unfinished, now, queued_timeout, evaluation)
    return _on_timeout_check(spec, run, view, now)


def _on_reconcile(
    spec: DagSpec,
    unfinished: list[TaskInstance],
    now: dt.datetime,
    queued_timeout: dt.timedelta,
    evaluation: Evaluation,
) -> list[Command]:
    commands: list[Command] = []
    for ti in unfinished:
        if ti.state is TaskState.QUEUED and (
            ti.queued_at is None or ti.queued_at <= now - queued_timeout
        ):
            task = spec.task(ti.task_id)
            commands.append(RequeueTask(ti.task_id, ti.map_index, ti.try_number, task.executor))
        if ti.state in WAITING_ON_TIMER:
            if ti.next_try_at is None or ti.next_try_at <= now:
                commands.append(schedule(spec, spec.task(ti.task_id), ti))
            else:
                commands.append(StartTimer(RetryDue(ti.task_id, ti.map_index), ti.next_try_at))
    commands.extend(evaluation.run(spec.topological_order))
    # Instances of an expanded map are scheduled when it expands; one still NONE
    # was cleared by an operator or lost between the expansion and its schedule.
    waiting = [ti for ti in unfinished if ti.map_index >= 0 and ti.state is TaskState.NONE]
    commands.extend(evaluation.schedule_mapped(waiting))
    return commands


def _fail_lost_starts(
    spec: DagSpec,
    run: DagRun,
    unfinished: list[TaskInstance],
    now: dt.datetime,
    timeout: dt.timedelta,
) -> list[Command]:
    """Fail (or retry) RUNNING tries that never beat and started over ``timeout``
    ago, as the reaper fails a try whose heartbeat went stale: their worker died
    between its claim and its first heartbeat, so no index holds them."""
    commands: list[Command] = []
    for ti in unfinished:
        if ti.state is not TaskState.RUNNING or ti.last_heartbeat_at is not None:
            continue
        if ti.start_date is not None and ti.start_date > now - timeout:
            continue  # its first heartbeat may still come
        commands.extend(fail_try(spec, run, ti, now, reason=HEARTBEAT_LOST))
    return commands


def _starts_with_run(task: TaskSpec) -> bool:
    return not task.upstream or task.trigger_rule is TriggerRule.ALWAYS


def _on_task_finished(
    spec: DagSpec, event: TaskFinished, view: RunStateView, evaluation: Evaluation
) -> list[Command]:
    task = spec.task(event.task_id)
    if task.flow == "short_circuit" and map_group(task) is None:
        # A short-circuit may skip tasks beyond its direct downstream
        # (ignore_downstream_trigger_rules=True); apply those first.
        finished = view.instance(event.task_id, event.map_index)
        if finished is not None and finished.skip_downstream:
            skipped = evaluation.force_skip(finished.skip_downstream, f"skipped by {event.task_id}")
            below = [d for tid in skipped for d in evaluation.after(tid)]
            return evaluation.run([*evaluation.after(task.task_id), *below])
    # Inside a mapped task group, instance i releases only instance i below it.
    whole, indexed = finished_targets(spec, event.task_id, event.map_index)
    whole += [t for t in spec.setup_watchers.get(task.task_id, ()) if t not in whole]
    return evaluation.run(whole, indexed)


def _on_retry_due(
    spec: DagSpec, event: RetryDue, view: RunStateView, now: dt.datetime
) -> list[Command]:
    ti = view.instance(event.task_id, event.map_index)
    if ti is None or ti.state not in WAITING_ON_TIMER:
        return []  # already retried or poked again, cleared or finished: a duplicate timer
    woken = event.early and ti.state is TaskState.UP_FOR_RESCHEDULE
    if ti.next_try_at is not None and ti.next_try_at > now and not woken:
        if event.early:
            return []  # a wake-up for a retry: its own timer is still set
        return [StartTimer(event, ti.next_try_at)]  # fired early; wait again
    return [schedule(spec, spec.task(ti.task_id), ti)]


def _on_timeout_check(
    spec: DagSpec, run: DagRun, view: RunStateView, now: dt.datetime
) -> list[Command]:
    commands: list[Command] = []
    if (
        spec.dagrun_timeout is not None
        and run.start_date is not None
        and now - run.start_date >= dt.timedelta(seconds=spec.dagrun_timeout)
    ):
        # Airflow fails the run and skips whatever had not finished.
        for ti in view.unfinished():
            commands.append(
                SetTaskState(
                    ti.task_id,
                    ti.map_index,
                    ti.state,
                    TaskState.SKIPPED,
                    ti.try_number,
                    reason="dagrun_timeout exceeded",
                    held_slots=_held(ti),
                )
            )
        commands.append(FinishRun(DagRunState.FAILED, "dagrun_timeout exceeded"))
        return commands
    for ti in view.unfinished():
        if ti.state is not TaskState.RUNNING or ti.start_date is None:
            continue
        task = spec.task(ti.task_id)
        if task.execution_timeout is None:
            continue
        if now - ti.start_date <= dt.timedelta(seconds=task.execution_timeout):
            continue
        commands.extend(fail_try(spec, run, ti, now, reason="execution_timeout exceeded"))
    return commands


def fail_try(
    spec: DagSpec,
    run: DagRun,
    ti: TaskInstance,
    now: dt.datetime,
    *,
    reason: str,
    non_retryable: bool = False,
) -> list[Command]:
    """Fail a running try from outside the worker (timeouts, lost heartbeats).

    A FAILED result needs its downstream evaluated: the caller applies the
    command and then reports ``TaskFinished``.
    """
    task = spec.task(ti.task_id)
    decision = decide_after_failure(
        task,
        dag_id=spec.dag_id,
        logical_date=run.logical_date,
        try_number=ti.try_number,
        failed_at=now,
        non_retryable=non_retryable,
        retry_base=ti.retry_base,
    )
    cmd: list[Command] = [
        SetTaskState(
            ti.task_id,
            ti.map_index,
            ti.state,
            decision.state,
            ti.try_number,
            reason=reason,
            next_try_at=decision.next_try_at,
            held_slots=_held(ti),
        )
    ]
    if decision.next_try_at is not None:
        cmd.append(StartTimer(RetryDue(ti.task_id, ti.map_index), decision.next_try_at))
    return cmd


def _held(ti: TaskInstance) -> tuple[str, ...]:
    return ti.slots if ti.state in (TaskState.QUEUED, TaskState.RUNNING) else ()


def finished_state(state: TaskState) -> bool:
    return state in FINISHED_TASK_STATES
