"""Drives the pure engine over an in-memory run with scripted task outcomes.

No operators, threads or clocks: the test decides in which order running
tries finish and what each one reports, so properties of the engine can be
checked for every order.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.core.engine import (
    FinishRun,
    RetryDue,
    RunStarted,
    ScheduleTask,
    StartTimer,
    TaskFinished,
    decide,
)
from chalicelib.core.retries import decide_after_failure
from chalicelib.core.runs import DagRun, RunType, TaskInstance
from chalicelib.core.spec import DagSpec, MappingSpec, MapSource, TaskSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.core.trigger_rules import TriggerRule, UpstreamCounts, Verdict, evaluate
from chalicelib.local.run_state import InMemoryRunState

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Outcome:
    state: TaskState  # SUCCESS, FAILED (a failed try) or SKIPPED
    skip_downstream: tuple[str, ...] | None = None
    result_length: int | None = None
    non_retryable: bool = False


OutcomeFn = Callable[[str, int, int], Outcome]


def succeed(_task: str, _index: int, _try: int) -> Outcome:
    return Outcome(TaskState.SUCCESS)


def make_spec(edges: dict[str, list[str]], **task_kwargs: dict) -> DagSpec:
    """Build a spec from {task: [downstream...]}; per-task overrides by keyword."""
    ids = list(dict.fromkeys([*edges, *(d for ds in edges.values() for d in ds)]))
    upstream: dict[str, list[str]] = {tid: [] for tid in ids}
    for tid, downs in edges.items():
        for d in downs:
            upstream[d].append(tid)
    tasks = {}
    for tid in ids:
        extra = dict(task_kwargs.get(tid, {}))
        tasks[tid] = TaskSpec(
            task_id=tid,
            operator="operators.empty.EmptyOperator",
            upstream=sorted(upstream[tid]),
            downstream=sorted(edges.get(tid, [])),
            **extra,
        )
    return DagSpec(dag_id="sim", tasks=tasks, sdk_version="test")


def literal_mapping(length: int) -> MappingSpec:
    return MappingSpec(sources={"x": MapSource(literal_length=length)})


def xcom_mapping(task_id: str) -> MappingSpec:
    return MappingSpec(sources={"x": MapSource(xcom_task_id=task_id)})


@dataclass
class SimResult:
    run_state: DagRunState
    states: dict[str, str]
    tries: dict[str, int]
    schedule_log: list[tuple[str, int, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    commands: int = 0


def manual_run(spec: DagSpec, run_id: str = "r") -> DagRun:
    """A running manual run of ``spec`` at T0 (data interval T0 to T0)."""
    return DagRun(
        dag_id=spec.dag_id,
        run_id=run_id,
        run_type=RunType.MANUAL,
        logical_date=T0,
        data_interval_start=T0,
        data_interval_end=T0,
        run_after=T0,
        state=DagRunState.RUNNING,
        start_date=T0,
    )


def running_state(spec: DagSpec, run_id: str = "r") -> InMemoryRunState:
    """The in-memory state of a fresh running manual run of ``spec``."""
    return InMemoryRunState(spec, manual_run(spec, run_id))


def simulate(
    spec: DagSpec,
    outcome: OutcomeFn = succeed,
    *,
    seed: int = 0,
    max_steps: int = 100_000,
) -> SimResult:
    """Run the DAG to the end, finishing running tries in a seeded random order."""
    rng = random.Random(seed)
    run = manual_run(spec, "manual__sim")
    state = InMemoryRunState(spec, run)
    now = T0
    running: list[tuple[str, int]] = []
    timers: list[StartTimer] = []
    result = SimResult(DagRunState.RUNNING, {}, {})

    def act(commands: list) -> None:
        result.commands += len(commands)
        for cmd in state.apply(commands, now):
            if isinstance(cmd, ScheduleTask):
                _check_allowed(spec, state, cmd, result)
                result.schedule_log.append((cmd.task_id, cmd.map_index, cmd.try_number))
                state.transition(cmd.task_id, cmd.map_index, TaskState.SCHEDULED, TaskState.QUEUED)
                state.transition(
                    cmd.task_id, cmd.map_index, TaskState.QUEUED, TaskState.RUNNING, start_date=now
                )
                running.append((cmd.task_id, cmd.map_index))
            elif isinstance(cmd, StartTimer):
                timers.append(cmd)
            elif isinstance(cmd, FinishRun):
                state.finish(cmd.state, now)

    act(decide(spec, state.run, RunStarted(), state, now))
    steps = 0
    while state.progress.outcome is None and not state.run.state.finished:
        steps += 1
        if steps > max_steps:
            raise AssertionError("run did not terminate")
        if running:
            task_id, index = running.pop(rng.randrange(len(running)))
            ti = state.instance(task_id, index)
            assert ti is not None
            out = outcome(task_id, index, ti.try_number)
            now += dt.timedelta(seconds=1)
            if out.state is TaskState.FAILED:
                decision = decide_after_failure(
                    spec.tasks[task_id],
                    dag_id=spec.dag_id,
                    logical_date=run.logical_date,
                    try_number=ti.try_number,
                    failed_at=now,
                    non_retryable=out.non_retryable,
                )
                state.transition(
                    task_id,
                    index,
                    TaskState.RUNNING,
                    decision.state,
                    next_try_at=decision.next_try_at,
                    end_date=now,
                )
                if decision.next_try_at is not None:
                    timers.append(StartTimer(RetryDue(task_id, index), decision.next_try_at))
                    continue
            else:
                state.transition(
                    task_id,
                    index,
                    TaskState.RUNNING,
                    out.state,
                    skip_downstream=out.skip_downstream,
                    result_length=out.result_length,
                    end_date=now,
                )
            act(decide(spec, state.run, TaskFinished(task_id, index), state, now))
        elif timers:
            timer = timers.pop(rng.randrange(len(timers)))
            now = max(now, timer.due)
            act(decide(spec, state.run, timer.event, state, now))
        else:
            raise AssertionError(
                "stuck: nothing running, no timers, run unfinished: "
                + ", ".join(f"{ti.label}={ti.state.value}" for ti in state.unfinished())
            )
    if not state.run.state.finished:
        outcome_state = state.progress.outcome
        assert outcome_state is not None
        state.finish(outcome_state, now)
    result.run_state = state.run.state
    for ti in state.task_instances():
        result.states[ti.label] = ti.state.value
        result.tries[ti.label] = ti.try_number
    return result


def _check_allowed(spec: DagSpec, state: InMemoryRunState, cmd: ScheduleTask, result: SimResult):
    """Recompute, from the full state, that the trigger rule lets this try start."""
    if cmd.try_number > 1:
        return  # a retry: the rule passed for the first try
    task = spec.tasks[cmd.task_id]
    counts = UpstreamCounts()
    for up in task.upstream:
        instances = _real_instances(state, up)
        for ti in instances:
            counts.add(ti.state, is_setup=spec.tasks[up].is_setup)
            if (
                ti.state is TaskState.SUCCESS
                and ti.skip_downstream
                and cmd.task_id in ti.skip_downstream
            ):
                result.violations.append(f"{cmd.task_id} started although {up} skipped it")
    verdict = evaluate(task.trigger_rule, counts)
    if verdict is not Verdict.RUN and task.trigger_rule is not TriggerRule.ALWAYS:
        result.violations.append(f"{cmd.task_id} started while its rule says {verdict.value}")


def _real_instances(state: InMemoryRunState, task_id: str) -> list[TaskInstance]:
    if task_id in state.mapped_count:
        return [state.instances[(task_id, i)] for i in range(state.mapped_count[task_id])]
    return [state.instances[(task_id, -1)]]
