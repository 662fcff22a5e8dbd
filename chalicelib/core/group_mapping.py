"""Mapped task groups in the engine: every task of the group runs index by index.

Each task of a mapped group has the group's input as its ``MappingSpec``
(``mapping.group`` names the group), so it expands like any mapped task. What
differs is readiness, as in Airflow (its trigger-rule dependency looks only at
the *relevant* map indexes of an upstream in the same mapped group):

- Inside the group, instance ``i`` of task B waits for instance ``i`` of its
  upstream A only. When A expands, its in-group downstream tasks expand with
  it (one placeholder write each, instances NONE); finishing ``A[i]`` then
  evaluates only ``B[i]`` for each in-group downstream B: bounded work.
- An upstream outside the group counts as a whole (all its instances), and a
  task outside the group below it waits for all of B's instances, read as
  per-state counts as for any mapped task (O(1) per evaluation).
- A branch inside the group chooses per index: ``B[i]`` is skipped when
  ``branch[i]`` did not follow it.
- When an upstream outside the group finishes (or an in-group upstream is
  decided as a whole, e.g. skipped before expanding), every instance of an
  expanded member is evaluated: that event touches all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.core.commands import ExpandTask, SetTaskState, TaskSummary
from chalicelib.core.runs import TaskInstance
from chalicelib.core.spec import DagSpec, TaskSpec
from chalicelib.core.states import TaskState
from chalicelib.core.trigger_rules import Verdict, evaluate

if TYPE_CHECKING:
    from chalicelib.core.evaluation import Evaluation

IndexedTask = tuple[str, int]


def map_group(task: TaskSpec) -> str | None:
    """The mapped task group ``task`` belongs to, if any."""
    return task.mapping.group if task.mapping is not None else None


def same_group(up: TaskSpec, down: TaskSpec) -> bool:
    group = map_group(up)
    return group is not None and group == map_group(down)


def finished_targets(
    spec: DagSpec, task_id: str, map_index: int
) -> tuple[list[str], list[IndexedTask]]:
    """What instance ``map_index`` of ``task_id`` finishing makes the engine evaluate:
    whole tasks (outside its mapped group) and single instances (inside it)."""
    task = spec.tasks[task_id]
    if map_index < 0 or map_group(task) is None:
        return list(task.downstream), []
    inside = [d for d in task.downstream if same_group(task, spec.tasks[d])]
    outside = [d for d in task.downstream if d not in inside]
    return outside, [(d, map_index) for d in inside]


class GroupIndexes:
    """The per-index part of one cascade (owned by ``core.evaluation.Evaluation``)."""

    def __init__(self, evaluation: Evaluation):
        self.ev = evaluation
        self.spec = evaluation.spec
        self.pending: list[IndexedTask] = []
        self._instances: dict[IndexedTask, TaskInstance | None] = {}
        self._expanded_here: dict[str, TaskInstance] = {}  # task -> its placeholder

    # -- reading instances -------------------------------------------------
    def instance(self, task_id: str, index: int) -> TaskInstance | None:
        """One instance, as stored or as this cascade decided it."""
        key = (task_id, index)
        if key not in self._instances:
            found = self.ev.view.instance(task_id, index)
            base = self._expanded_here.get(task_id)
            if found is None and base is not None:  # expanded by this cascade, not written yet
                found = TaskInstance(task_id=task_id, map_index=index, try_number=base.try_number)
            self._instances[key] = found
        return self._instances[key]

    def per_index(self, up: str, task: TaskSpec) -> bool:
        """Whether ``task``'s instance i reads ``up``'s instance i (not all of ``up``)."""
        summary = self.ev.known.get(up)
        return summary is not None and summary.expanded and same_group(self.spec.tasks[up], task)

    def state_at(self, up: str, index: int) -> TaskState:
        ti = self.instance(up, index)
        return ti.state if ti is not None else TaskState.REMOVED

    # -- whole-task evaluation of a member -----------------------------------
    def whole(self, task: TaskSpec, summary: TaskSummary) -> bool | None:
        """A member reached as a whole; None lets the usual evaluation decide it."""
        if map_group(task) is None:
            return None
        if summary.expanded:
            self._queue_all(task.task_id, summary.mapped_count or 0)
            return False
        if summary.instance.state is not TaskState.NONE:
            return None
        expanded_up = [
            self.ev.known[up]
            for up in task.upstream
            if up in self.ev.known and self.per_index(up, task)
        ]
        if not expanded_up:
            return None  # no in-group upstream ran yet: decided as a whole
        # An in-group upstream expanded without this task (a write lost between
        # the two expansions): expand it now and decide each instance.
        count = expanded_up[0].mapped_count or 0
        self._expand_with(task.task_id, count, summary)
        self._queue_all(task.task_id, count)
        return False

    def co_expand(self, task: TaskSpec, count: int) -> None:
        """``task`` expanded: its in-group downstream tasks expand with it, waiting."""
        frontier = [d for d in task.downstream if same_group(task, self.spec.tasks[d])]
        seen: set[str] = set()
        while frontier:
            self.ev._load(frontier, upstream=False)
            nxt: list[str] = []
            for tid in frontier:
                if tid in seen:
                    continue
                seen.add(tid)
                summary = self.ev.known[tid]
                if not summary.expanded and summary.instance.state is TaskState.NONE:
                    self._expand_with(tid, count, summary)
                down = self.spec.tasks[tid]
                nxt += [d for d in down.downstream if same_group(down, self.spec.tasks[d])]
            frontier = [t for t in nxt if t not in seen]

    def _expand_with(self, task_id: str, count: int, summary: TaskSummary) -> None:
        self.ev.commands.append(ExpandTask(task_id, count))
        self._expanded_here[task_id] = summary.instance
        self.ev.known[task_id] = TaskSummary(
            summary.instance, mapped_count=count, state_counts={TaskState.NONE: count}
        )

    def _queue_all(self, task_id: str, count: int) -> None:
        self.pending.extend((task_id, index) for index in range(count))

    # -- per-index evaluation ------------------------------------------------
    def evaluate_pending(self) -> list[str]:
        """Decide the queued instances and what their skips reach; returns the
        tasks outside the group to evaluate as a whole next."""
        whole: dict[str, None] = {}
        while self.pending:
            wave = list(dict.fromkeys(self.pending))
            self.pending = []
            self.ev._load({tid for tid, _ in wave})
            for tid, index in wave:
                task = self.spec.tasks[tid]
                decided = self._evaluate_at(task, index)
                if decided is None:
                    continue
                for d in task.downstream:
                    if same_group(task, self.spec.tasks[d]):
                        self.pending.append((d, index))
                    else:
                        whole[d] = None
        return list(whole)

    def _evaluate_at(self, task: TaskSpec, index: int) -> TaskState | None:
        """Evaluate instance ``index`` of a member; the state it was decided into
        without running, or None."""
        summary = self.ev.known[task.task_id]
        if not summary.expanded:
            # Its expansion was lost (a writer died between the two): expand it
            # now and decide all its instances, once.
            self.whole(task, summary)
            return None
        if index >= (summary.mapped_count or 0):
            return None
        ti = self.instance(task.task_id, index)
        if ti is None or ti.state is not TaskState.NONE:
            return None
        from chalicelib.core.evaluation import WAITING_FOR_BRANCH, schedule

        skipper = self.ev._skipped_by_branch(task, index)
        if skipper is WAITING_FOR_BRANCH:
            return None  # a branch above has not chosen yet
        if skipper is not None:
            return self._decide(ti, TaskState.SKIPPED, f"not followed by branch {skipper}")
        counts = self.ev._upstream_counts(task, index)
        verdict = evaluate(task.trigger_rule, counts)
        if verdict is Verdict.WAIT:
            return None
        if verdict is Verdict.RUN:
            self.ev.commands.append(schedule(self.spec, task, ti))
            self._instances[ti.key] = ti.evolve(state=TaskState.SCHEDULED)
            return None
        if not counts.all_done:
            return None  # as for whole tasks: decided once every upstream is done
        state = TaskState.SKIPPED if verdict is Verdict.SKIP else TaskState.UPSTREAM_FAILED
        return self._decide(ti, state, "trigger rule")

    def _decide(self, ti: TaskInstance, state: TaskState, reason: str) -> TaskState:
        self.ev.commands.append(
            SetTaskState(ti.task_id, ti.map_index, ti.state, state, ti.try_number, reason=reason)
        )
        self._instances[ti.key] = ti.evolve(state=state)
        summary = self.ev.known[ti.task_id]
        counts = dict(summary.state_counts)
        if counts.get(ti.state):
            counts[ti.state] -= 1
        counts[state] = counts.get(state, 0) + 1
        self.ev.known[ti.task_id] = TaskSummary(
            summary.instance, mapped_count=summary.mapped_count, state_counts=counts
        )
        return state
