"""The scheduling decision: given what just happened in a run, what must change.

``decide`` is a pure function. It reads the run's state through a narrow,
read-only view and returns commands; an adapter (the in-memory runner, the
DynamoDB store) applies them with conditional writes. Deciding and doing are
separate, as in Chalice's deployer planner/executor.

Work is bounded by what the event touches: "task X finished" evaluates only
X's direct downstream tasks, and then only the tasks a cascade of skips or
upstream failures reaches. Mapped tasks are read as per-state counts, so a
10,000-way map costs O(1) per evaluation of its downstream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.core.retries import decide_after_failure
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.slots import SlotClaim
from chalicelib.core.spec import DagSpec, ExecutorSpec, TaskSpec
from chalicelib.core.states import FINISHED_TASK_STATES, DagRunState, TaskState
from chalicelib.core.trigger_rules import TriggerRule, UpstreamCounts, Verdict, evaluate

WAITING_FOR_BRANCH = "\0waiting-for-branch"

MAX_MAP_LENGTH = 100_000
"""Largest expansion of one mapped task (Airflow's max_map_length defaults to 1,024)."""

QUEUED_TIMEOUT = dt.timedelta(seconds=600)
"""Airflow's ``[scheduler] task_queued_timeout``: a try queued this long without a
worker starting it was lost on its way, and reconciliation dispatches it again."""


# ---------------------------------------------------------------- events in


@dataclass(frozen=True)
class RunStarted:
    """A run moved to RUNNING: its root tasks (and ``always`` tasks) are evaluated."""


@dataclass(frozen=True)
class TaskFinished:
    """A task instance reached a finished state: its downstream tasks are evaluated."""

    task_id: str
    map_index: int = -1


@dataclass(frozen=True)
class RetryDue:
    """The timer of an up-for-retry instance fired."""

    task_id: str
    map_index: int = -1


@dataclass(frozen=True)
class TimeoutCheck:
    """Periodic check of ``dagrun_timeout`` and of tries running past ``execution_timeout``.

    This is the only event that reads every unfinished instance of a run; the
    tick sends it for running runs whose DAG declares a timeout.
    """


@dataclass(frozen=True)
class Reconcile:
    """Re-evaluate a whole run that made no progress for a while.

    The safety net for a lost hand-off (a worker that died between recording
    its outcome and starting the next tasks) and for a lost retry timer. It
    reads every task of the run, so the tick sends it only for stalled runs.
    """


Event = RunStarted | TaskFinished | RetryDue | TimeoutCheck | Reconcile


# ------------------------------------------------------------- commands out


@dataclass(frozen=True)
class SetTaskState:
    """Move one instance from ``expected`` to ``state`` (a conditional write)."""

    task_id: str
    map_index: int
    expected: TaskState
    state: TaskState
    try_number: int
    reason: str = ""
    next_try_at: dt.datetime | None = None
    held_slots: tuple[str, ...] = ()  # slots the try gives back (it was QUEUED/RUNNING)


@dataclass(frozen=True)
class ScheduleTask:
    """Start try ``try_number`` of an instance: ``expected`` -> SCHEDULED, then dispatch."""

    task_id: str
    map_index: int
    expected: TaskState
    try_number: int
    priority: int
    pool: str
    pool_slots: int
    executor: ExecutorSpec
    claims: tuple[SlotClaim, ...] = ()  # filled by the dispatcher: limits this try must pass


@dataclass(frozen=True)
class RequeueTask:
    """Dispatch again a try that sat QUEUED past ``QUEUED_TIMEOUT``: its invoke was
    lost on the way (or its dispatcher died before sending it). The worker's claim
    still decides who starts it, so a late first invoke cannot run it twice."""

    task_id: str
    map_index: int
    try_number: int
    executor: ExecutorSpec


@dataclass(frozen=True)
class ExpandTask:
    """Replace a mapped task's placeholder with ``count`` instances (indices 0..count-1)."""

    task_id: str
    count: int


@dataclass(frozen=True)
class StartTimer:
    """Deliver ``event`` at ``due`` (an SQS delay message, or the tick for longer waits)."""

    event: RetryDue
    due: dt.datetime


@dataclass(frozen=True)
class FinishRun:
    state: DagRunState
    reason: str = ""


Command = SetTaskState | ScheduleTask | RequeueTask | ExpandTask | StartTimer | FinishRun


# ------------------------------------------------------------ the run view


@dataclass(frozen=True)
class TaskSummary:
    """What the engine needs to know about one task of a run.

    ``instance`` is the task's single instance when unmapped, or the mapped
    task's placeholder (map_index -1). Once a mapped task is expanded,
    ``mapped_count`` is set and ``state_counts`` tallies its instances.
    """

    instance: TaskInstance
    mapped_count: int | None = None
    state_counts: Mapping[TaskState, int] = field(default_factory=dict)

    @property
    def expanded(self) -> bool:
        return self.mapped_count is not None

    def count(self, state: TaskState) -> int:
        if self.mapped_count is None:
            return 1 if self.instance.state is state else 0
        return self.state_counts.get(state, 0)


class RunStateView(Protocol):
    """Read-only access to one run's task instances, loaded on demand.

    ``summaries`` is called once per cascade wave with every task id that
    wave needs, so a store can fetch them in one batch.
    """

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]: ...

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None: ...

    def unfinished(self) -> Iterable[TaskInstance]: ...


# ------------------------------------------------------------------ decide


def decide(
    spec: DagSpec, run: DagRun, event: Event, view: RunStateView, now: dt.datetime
) -> list[Command]:
    """The commands that follow from ``event`` in ``run`` at time ``now``."""
    if run.state.finished:
        return []
    if isinstance(event, RunStarted):
        starters = [tid for tid in spec.tasks if _starts_with_run(spec.tasks[tid])]
        return _Evaluation(spec, view).run(starters)
    if isinstance(event, TaskFinished):
        return _on_task_finished(spec, event, view)
    if isinstance(event, RetryDue):
        return _on_retry_due(spec, event, view, now)
    if isinstance(event, Reconcile):
        return _on_reconcile(spec, view, now)
    return _on_timeout_check(spec, run, view, now)


def _on_reconcile(spec: DagSpec, view: RunStateView, now: dt.datetime) -> list[Command]:
    commands: list[Command] = []
    unfinished = list(view.unfinished())
    for ti in unfinished:
        if ti.state is TaskState.QUEUED and (
            ti.queued_at is None or ti.queued_at <= now - QUEUED_TIMEOUT
        ):
            task = spec.task(ti.task_id)
            commands.append(RequeueTask(ti.task_id, ti.map_index, ti.try_number, task.executor))
        if ti.state is TaskState.UP_FOR_RETRY:
            if ti.next_try_at is None or ti.next_try_at <= now:
                commands.append(_schedule(spec, spec.task(ti.task_id), ti))
            else:
                commands.append(StartTimer(RetryDue(ti.task_id, ti.map_index), ti.next_try_at))
    evaluation = _Evaluation(spec, view)
    commands.extend(evaluation.run(spec.topological_order))
    # Instances of an expanded map are scheduled when it expands; one still NONE
    # was cleared by an operator or lost between the expansion and its schedule.
    waiting = [ti for ti in unfinished if ti.map_index >= 0 and ti.state is TaskState.NONE]
    commands.extend(evaluation.schedule_mapped(waiting))
    return commands


def _starts_with_run(task: TaskSpec) -> bool:
    return not task.upstream or task.trigger_rule is TriggerRule.ALWAYS


def _on_task_finished(spec: DagSpec, event: TaskFinished, view: RunStateView) -> list[Command]:
    task = spec.task(event.task_id)
    evaluation = _Evaluation(spec, view)
    if task.flow == "short_circuit":
        # A short-circuit may skip tasks beyond its direct downstream
        # (ignore_downstream_trigger_rules=True); apply those first.
        finished = view.instance(event.task_id, event.map_index)
        if finished is not None and finished.skip_downstream:
            skipped = evaluation.force_skip(finished.skip_downstream, f"skipped by {event.task_id}")
            below = [d for tid in skipped for d in spec.tasks[tid].downstream]
            return evaluation.run([*task.downstream, *below])
    return evaluation.run(task.downstream)


def _on_retry_due(
    spec: DagSpec, event: RetryDue, view: RunStateView, now: dt.datetime
) -> list[Command]:
    ti = view.instance(event.task_id, event.map_index)
    if ti is None or ti.state is not TaskState.UP_FOR_RETRY:
        return []  # already retried, cleared or finished: a duplicate timer
    if ti.next_try_at is not None and ti.next_try_at > now:
        return [StartTimer(event, ti.next_try_at)]  # fired early; wait again
    return [_schedule(spec, spec.task(ti.task_id), ti)]


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


def _schedule(spec: DagSpec, task: TaskSpec, ti: TaskInstance) -> ScheduleTask:
    return ScheduleTask(
        task_id=ti.task_id,
        map_index=ti.map_index,
        expected=ti.state,
        try_number=ti.try_number + 1,
        priority=spec.priorities[task.task_id],
        pool=task.pool,
        pool_slots=task.pool_slots,
        executor=task.executor,
    )


class _Evaluation:
    """One cascade of trigger-rule evaluations with a local overlay of its own decisions."""

    def __init__(self, spec: DagSpec, view: RunStateView):
        self.spec = spec
        self.view = view
        self.known: dict[str, TaskSummary] = {}
        self.commands: list[Command] = []

    def _load(self, task_ids: Iterable[str]) -> None:
        missing = [tid for tid in dict.fromkeys(task_ids) if tid not in self.known]
        if missing:
            self.known.update(self.view.summaries(missing))

    def _decided(self, tid: str, state: TaskState, reason: str) -> None:
        summary = self.known[tid]
        ti = summary.instance
        self.commands.append(
            SetTaskState(tid, ti.map_index, ti.state, state, ti.try_number, reason=reason)
        )
        self.known[tid] = TaskSummary(ti.evolve(state=state))

    def force_skip(self, task_ids: Iterable[str], reason: str) -> list[str]:
        ids = [tid for tid in task_ids if tid in self.spec.tasks]
        self._load(ids)
        skipped = []
        for tid in ids:
            summary = self.known[tid]
            if not summary.expanded and summary.instance.state is TaskState.NONE:
                self._decided(tid, TaskState.SKIPPED, reason)
                skipped.append(tid)
        return skipped

    def schedule_mapped(self, instances: Sequence[TaskInstance]) -> list[Command]:
        """Schedule NONE instances of expanded maps whose trigger rule passes now."""
        tasks = self.spec.tasks
        needed = {ti.task_id for ti in instances}
        self._load([*needed, *(up for tid in needed for up in tasks[tid].upstream)])
        commands: list[Command] = []
        for ti in instances:
            task = tasks[ti.task_id]
            if self._skipped_by_branch(task) is not None:
                continue
            if evaluate(task.trigger_rule, self._upstream_counts(task)) is Verdict.RUN:
                commands.append(_schedule(self.spec, task, ti))
        return commands

    def run(self, candidates: Iterable[str]) -> list[Command]:
        tasks = self.spec.tasks
        wave = list(dict.fromkeys(candidates))
        while wave:
            needed: list[str] = list(wave)
            for tid in wave:
                needed.extend(tasks[tid].upstream)
            self._load(needed)
            changed: list[str] = []
            for tid in wave:
                if self._evaluate(tasks[tid]):
                    changed.append(tid)
            nxt: dict[str, None] = {}
            for tid in changed:
                for down in tasks[tid].downstream:
                    nxt[down] = None
            wave = list(nxt)
        return self.commands

    def _evaluate(self, task: TaskSpec) -> bool:
        """Evaluate one waiting task; True when it finished without running."""
        summary = self.known[task.task_id]
        if summary.expanded or summary.instance.state is not TaskState.NONE:
            return False
        skipper = self._skipped_by_branch(task)
        if skipper is WAITING_FOR_BRANCH:
            return False
        if skipper is not None:
            self._decided(task.task_id, TaskState.SKIPPED, f"not followed by branch {skipper}")
            return True
        counts = self._upstream_counts(task)
        verdict = evaluate(task.trigger_rule, counts)
        if verdict is Verdict.WAIT:
            return False
        if verdict is not Verdict.RUN and not counts.all_done:
            # Airflow marks skipped/upstream_failed as soon as one upstream
            # allows it, so with a skipped and a failed upstream the result
            # depends on which finished first. Deciding only once every
            # upstream is done makes the outcome independent of timing; the
            # run cannot end before those upstreams anyway.
            return False
        if verdict is Verdict.SKIP:
            self._decided(task.task_id, TaskState.SKIPPED, "trigger rule")
            return True
        if verdict is Verdict.UPSTREAM_FAILED:
            self._decided(task.task_id, TaskState.UPSTREAM_FAILED, "trigger rule")
            return True
        if task.mapping is None:
            self.commands.append(_schedule(self.spec, task, summary.instance))
            self.known[task.task_id] = TaskSummary(
                summary.instance.evolve(state=TaskState.SCHEDULED)
            )
            return False
        return self._expand(task, summary)

    def _skipped_by_branch(self, task: TaskSpec) -> str | None:
        """Airflow's NotPreviouslySkippedDep: a branch upstream chose another path.

        Returns ``WAITING_FOR_BRANCH`` while a branching upstream has not
        finished: a task below a branch is decided only after the branch
        chose, so an early rule (one_success) cannot race the branch.
        """
        for up in task.upstream:
            if self.spec.tasks[up].flow == "normal":
                continue
            ti = self.known[up].instance
            if not self.known[up].expanded and not ti.state.finished:
                return WAITING_FOR_BRANCH
            if (
                ti.state is TaskState.SUCCESS
                and ti.skip_downstream
                and task.task_id in (ti.skip_downstream)
            ):
                return up
        return None

    def _upstream_counts(self, task: TaskSpec) -> UpstreamCounts:
        counts = UpstreamCounts()
        for up in task.upstream:
            summary = self.known[up]
            is_setup = self.spec.tasks[up].is_setup
            if summary.mapped_count is None:
                counts.add(summary.instance.state, is_setup=is_setup)
            else:
                # An expansion that is not fully tallied yet still counts as waiting.
                tallied = 0
                for state, n in summary.state_counts.items():
                    counts.add(state, is_setup=is_setup, times=n)
                    tallied += n
                if tallied < summary.mapped_count:
                    counts.add(
                        TaskState.NONE, is_setup=is_setup, times=summary.mapped_count - tallied
                    )
        return counts

    def _expand(self, task: TaskSpec, summary: TaskSummary) -> bool:
        length, problem = self._map_length(task)
        tid = task.task_id
        if problem is not None:
            self._decided(tid, TaskState.FAILED, problem)
            return True
        if length == 0:
            # Airflow: a zero-length map creates no instances and skips the task.
            self._decided(tid, TaskState.SKIPPED, "mapped over an empty input")
            return True
        self.commands.append(ExpandTask(tid, length))
        base = summary.instance
        for index in range(length):
            ti = TaskInstance(task_id=tid, map_index=index, try_number=base.try_number)
            self.commands.append(_schedule(self.spec, task, ti))
        self.known[tid] = TaskSummary(
            base, mapped_count=length, state_counts={TaskState.SCHEDULED: length}
        )
        return False

    def _map_length(self, task: TaskSpec) -> tuple[int, str | None]:
        mapping = task.mapping
        assert mapping is not None
        lengths: list[int] = []
        for name, source in mapping.sources.items():
            if source.literal_length is not None:
                lengths.append(source.literal_length)
                continue
            up = source.xcom_task_id
            if up is None or up not in self.known:
                return 0, f"mapped argument {name!r} has no source"
            summary = self.known[up]
            if summary.mapped_count is not None:
                lengths.append(summary.count(TaskState.SUCCESS))
            elif summary.instance.state is not TaskState.SUCCESS:
                lengths.append(0)  # a rule let us run past a non-successful source
            elif summary.instance.result_length is None:
                return 0, (
                    f"cannot map over the result of task {up!r} for argument {name!r}: "
                    "it is not a list or dict"
                )
            else:
                lengths.append(summary.instance.result_length)
        total = 1
        for n in lengths:
            total *= n
        if mapping.kind == "expand_kwargs":
            total = lengths[0] if lengths else 0
        if total > MAX_MAP_LENGTH:
            return 0, f"mapped to {total} instances, more than the limit of {MAX_MAP_LENGTH}"
        return total, None


def finished_state(state: TaskState) -> bool:
    return state in FINISHED_TASK_STATES
