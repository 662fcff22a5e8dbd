"""One run's task instances held in memory, with the same guarded transitions
the DynamoDB store makes as conditional writes.

Used by ``dag.test()`` and ``slipstream dags test``. Every change names the
state it expects; a mismatch raises ``StaleState`` instead of overwriting,
exactly as a failed DynamoDB condition would.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from chalicelib.core.engine import (
    Command,
    ExpandTask,
    FinishRun,
    ScheduleTask,
    SetTaskState,
    StartTimer,
    TaskSummary,
)
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.fan_in import FanInCounts
from chalicelib.core.progress import (
    RunProgress,
    expansion_delta,
    initial_progress,
    transition_delta,
)
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState, check_task_transition


class StaleState(SlipstreamError):
    """A guarded change found the instance in another state than it expected."""


class InMemoryRunState:
    """Task instances of one run; implements the engine's ``RunStateView``."""

    def __init__(self, spec: DagSpec, run: DagRun):
        self.spec = spec
        self.run = run
        self.instances: dict[tuple[str, int], TaskInstance] = {
            (tid, -1): TaskInstance(task_id=tid) for tid in spec.tasks
        }
        self.mapped_count: dict[str, int] = {}
        self.mapped_states: dict[str, Counter[TaskState]] = {}
        self.fan_in_counts: dict[str, Counter[TaskState]] = {
            join: Counter() for join in spec.fan_ins.counted
        }
        self.progress: RunProgress = initial_progress(spec)

    # ------------------------------------------------------------- the view

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        result: dict[str, TaskSummary] = {}
        for tid in task_ids:
            placeholder = self.instances[(tid, -1)]
            count = self.mapped_count.get(tid)
            if count is None:
                result[tid] = TaskSummary(placeholder)
            else:
                result[tid] = TaskSummary(
                    placeholder, mapped_count=count, state_counts=dict(self.mapped_states[tid])
                )
        return result

    def fan_in(self, join_ids: Collection[str]) -> Mapping[str, FanInCounts]:
        return {j: {s: n for s, n in self.fan_in_counts[j].items() if n} for j in join_ids}

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None:
        return self.instances.get((task_id, map_index))

    def unfinished(self) -> Iterable[TaskInstance]:
        for (tid, index), ti in list(self.instances.items()):
            if index < 0 and tid in self.mapped_count:
                continue  # an expanded placeholder stands for nothing now
            if not ti.state.finished:
                yield ti

    def task_instances(self) -> list[TaskInstance]:
        """Every real instance, in DAG order then map index."""
        order = {tid: i for i, tid in enumerate(self.spec.tasks)}
        items = [
            ti
            for (tid, index), ti in self.instances.items()
            if not (index < 0 and tid in self.mapped_count)
        ]
        items.sort(key=lambda ti: (order[ti.task_id], ti.map_index))
        return items

    # ------------------------------------------------------------ changes

    def transition(
        self,
        task_id: str,
        map_index: int,
        expected: TaskState,
        new: TaskState,
        **changes: object,
    ) -> TaskInstance:
        """Guarded state change; keeps run progress and mapped tallies in step."""
        key = (task_id, map_index)
        ti = self.instances.get(key)
        if ti is None:
            raise StaleState(f"no instance {task_id}[{map_index}]")
        if ti.state is not expected:
            raise StaleState(
                f"{ti.label} is {ti.state.value}, expected {expected.value} (wanted {new.value})"
            )
        check_task_transition(expected, new, ti.label)
        updated = ti.evolve(state=new, **changes)
        self.instances[key] = updated
        if map_index >= 0:
            tally = self.mapped_states[task_id]
            tally[expected] -= 1
            tally[new] += 1
        for join, state, step in self.spec.fan_ins.moves(task_id, map_index, expected, new):
            self.fan_in_counts[join][state] += step
        self.progress = self.progress + transition_delta(self.spec, task_id, expected, new)
        return updated

    def apply(self, commands: Iterable[Command], now: dt.datetime) -> list[Command]:
        """Apply state commands; return those the caller acts on (schedule, timers, finish)."""
        follow_up: list[Command] = []
        for cmd in commands:
            if isinstance(cmd, SetTaskState):
                ended = cmd.state.finished
                self.transition(
                    cmd.task_id,
                    cmd.map_index,
                    cmd.expected,
                    cmd.state,
                    next_try_at=cmd.next_try_at,
                    error=cmd.reason or None,
                    end_date=now if ended else None,
                )
            elif isinstance(cmd, ExpandTask):
                self._expand(cmd)
            elif isinstance(cmd, ScheduleTask):
                self.transition(
                    cmd.task_id,
                    cmd.map_index,
                    cmd.expected,
                    TaskState.SCHEDULED,
                    try_number=cmd.try_number,
                    next_try_at=None,
                    # a new try's sensor timeout starts afresh; a reschedule keeps it
                    **({} if cmd.same_try else {"first_poke_at": None}),
                )
                follow_up.append(cmd)
            elif isinstance(cmd, (StartTimer, FinishRun)):
                follow_up.append(cmd)
        return follow_up

    def _expand(self, cmd: ExpandTask) -> None:
        if cmd.task_id in self.mapped_count:
            raise StaleState(f"{cmd.task_id} is already expanded")
        for index in range(cmd.count):
            self.instances[(cmd.task_id, index)] = TaskInstance(
                task_id=cmd.task_id, map_index=index
            )
        self.mapped_count[cmd.task_id] = cmd.count
        self.mapped_states[cmd.task_id] = Counter({TaskState.NONE: cmd.count})
        self.progress = self.progress + expansion_delta(cmd.count)

    def finish(self, state: DagRunState, now: dt.datetime) -> DagRun:
        self.run = self.run.with_state(state, end_date=now)
        return self.run
