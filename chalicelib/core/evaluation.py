"""One cascade of trigger-rule evaluations, the heart of ``engine.decide``.

It evaluates the tasks an event touches, then whatever its own skips and
upstream failures reach, and keeps a local overlay of its own decisions
(commands not written yet), including their effect on wide joins' counts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from chalicelib.core.commands import (
    Command,
    ExpandTask,
    RunStateView,
    ScheduleTask,
    SetTaskState,
    TaskSummary,
)
from chalicelib.core.fan_in import FanInCounts
from chalicelib.core.group_mapping import GroupIndexes, IndexedTask, map_group
from chalicelib.core.map_sources import source_length
from chalicelib.core.past import PastCheck, PastView
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.setup_teardown import indirect_setup_verdict
from chalicelib.core.spec import DagSpec, MapSource, TaskSpec
from chalicelib.core.states import TaskState
from chalicelib.core.trigger_rules import UpstreamCounts, Verdict, evaluate

WAITING_FOR_BRANCH = "\0waiting-for-branch"

MAX_MAP_LENGTH = 100_000
"""Largest expansion of one mapped task (Airflow's max_map_length defaults to 1,024)."""


def schedule(spec: DagSpec, task: TaskSpec, ti: TaskInstance) -> ScheduleTask:
    """Start the next try, or poke again in the same one after a reschedule."""
    same_try = ti.state is TaskState.UP_FOR_RESCHEDULE
    return ScheduleTask(
        task_id=ti.task_id,
        map_index=ti.map_index,
        expected=ti.state,
        try_number=ti.try_number if same_try else ti.try_number + 1,
        same_try=same_try,
        priority=spec.priorities[task.task_id],
        pool=task.pool,
        pool_slots=task.pool_slots,
        executor=task.executor,
    )


class Evaluation:
    """One cascade of trigger-rule evaluations with a local overlay of its own decisions."""

    def __init__(
        self,
        spec: DagSpec,
        view: RunStateView,
        *,
        run: DagRun | None = None,
        past: PastView | None = None,
    ):
        self.spec = spec
        self.view = view
        self.past = PastCheck(spec, run, past)
        self.fan_ins = spec.fan_ins
        self.known: dict[str, TaskSummary] = {}
        self.counts: dict[str, FanInCounts] = {}  # wide joins' counts as read
        # what this cascade's own decisions (not written yet) change in them
        self.overlay: dict[str, dict[TaskState, int]] = {}
        self.commands: list[Command] = []
        self.groups = GroupIndexes(self)  # mapped task groups, index by index

    def _load(self, task_ids: Iterable[str], *, upstream: bool = True) -> None:
        """Load the summaries of ``task_ids`` and, to evaluate them, of their
        upstream tasks (for a wide join: its counts and its other upstreams)."""
        wanted = list(dict.fromkeys(task_ids))
        joins: list[str] = []
        if upstream:
            joins = [t for t in wanted if self.fan_ins.is_wide(t) and t not in self.counts]
            evaluated = list(wanted)
            wanted += [up for t in evaluated for up in self._read_upstream(self.spec.tasks[t])]
            indirect = self.spec.indirect_setups  # a scope's setups (core.setup_teardown)
            wanted += [s for t in evaluated for s in indirect.get(t, ())]
        missing = [tid for tid in dict.fromkeys(wanted) if tid not in self.known]
        if missing:
            self.known.update(self.view.summaries(missing))
        if joins:
            self.counts.update(self.view.fan_in(joins))

    def after(self, task_id: str) -> list[str]:
        """What to evaluate once ``task_id`` finished: its downstream tasks and, for a
        setup, the tasks of its scope that wait on it alone (core.setup_teardown)."""
        return [*self.spec.tasks[task_id].downstream, *self.spec.setup_watchers.get(task_id, ())]

    def _read_upstream(self, task: TaskSpec) -> Sequence[str]:
        """The upstream tasks read one by one (all but a wide join's counted ones)."""
        return self.fan_ins.individual.get(task.task_id, task.upstream)

    def _decided(self, tid: str, state: TaskState, reason: str) -> None:
        summary = self.known[tid]
        ti = summary.instance
        self.commands.append(
            SetTaskState(tid, ti.map_index, ti.state, state, ti.try_number, reason=reason)
        )
        self.known[tid] = TaskSummary(ti.evolve(state=state))
        for join, moved, step in self.fan_ins.moves(tid, ti.map_index, ti.state, state):
            overlay = self.overlay.setdefault(join, {})
            overlay[moved] = overlay.get(moved, 0) + step

    def force_skip(self, task_ids: Iterable[str], reason: str) -> list[str]:
        ids = [tid for tid in task_ids if tid in self.spec.tasks]
        self._load(ids, upstream=False)
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
        self._load({ti.task_id for ti in instances})
        commands: list[Command] = []
        for ti in instances:
            task = tasks[ti.task_id]
            if map_group(task) is not None:
                continue  # decided index by index when the run is evaluated (group_mapping)
            if self._skipped_by_branch(task) is not None:
                continue
            if evaluate(task.trigger_rule, self._upstream_counts(task)) is not Verdict.RUN:
                continue
            if self.past.waiting_reason(task) is None:
                commands.append(schedule(self.spec, task, ti))
        return commands

    def run(self, candidates: Iterable[str], indexed: Iterable[IndexedTask] = ()) -> list[Command]:
        """Evaluate ``candidates`` (whole tasks) and ``indexed`` (single instances
        of mapped task groups' tasks), then whatever their decisions reach."""
        tasks = self.spec.tasks
        wave = list(dict.fromkeys(candidates))
        self.groups.pending.extend(indexed)
        while wave or self.groups.pending:
            nxt: dict[str, None] = {}
            if wave:
                self._load(wave)
                changed: list[str] = []
                for tid in wave:
                    if self._evaluate(tasks[tid]):
                        changed.append(tid)
                for tid in changed:
                    for down in self.after(tid):
                        nxt[down] = None
            nxt.update(dict.fromkeys(self.groups.evaluate_pending()))
            wave = list(nxt)
        return self.commands

    def _evaluate(self, task: TaskSpec) -> bool:
        """Evaluate one waiting task; True when it finished without running."""
        summary = self.known[task.task_id]
        as_member = self.groups.whole(task, summary)
        if as_member is not None:
            return as_member
        if summary.expanded or summary.instance.state is not TaskState.NONE:
            return False
        skipper = self._skipped_by_branch(task)
        if skipper is WAITING_FOR_BRANCH:
            return False
        if skipper is not None:
            if self._past_holds_skip(task):
                return False
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
        setups = self.spec.indirect_setups.get(task.task_id)
        if setups:
            # Airflow's implicit all_success on the setups of the task's scope;
            # its failure or skip wins over the task's own rule.
            constraint = indirect_setup_verdict(self._counts_of(setups))
            if constraint is not Verdict.RUN:
                if not counts.all_done or constraint is Verdict.WAIT:
                    return False
                verdict = constraint
        if verdict is not Verdict.RUN and self._past_holds_skip(task):
            return False
        if verdict is Verdict.SKIP:
            self._decided(task.task_id, TaskState.SKIPPED, "trigger rule")
            return True
        if verdict is Verdict.UPSTREAM_FAILED:
            self._decided(task.task_id, TaskState.UPSTREAM_FAILED, "trigger rule")
            return True
        if self.past.waiting_reason(task) is not None:
            # Airflow's PrevDagrunDep: the task stays NONE until the previous
            # run's instance changes (scheduler.past wakes it with PastChanged).
            return False
        if task.mapping is None:
            self.commands.append(schedule(self.spec, task, summary.instance))
            self.known[task.task_id] = TaskSummary(
                summary.instance.evolve(state=TaskState.SCHEDULED)
            )
            return False
        return self._expand(task, summary)

    def _past_holds_skip(self, task: TaskSpec) -> bool:
        """Airflow's ``wait_for_past_depends_before_skipping``: no skip or
        upstream-failed decision while the task's past is not met."""
        return (
            task.wait_for_past_depends_before_skipping
            and self.past.waiting_reason(task) is not None
        )

    def _skipped_by_branch(self, task: TaskSpec, index: int = -1) -> str | None:
        """Airflow's NotPreviouslySkippedDep: a branch upstream chose another path.

        Returns ``WAITING_FOR_BRANCH`` while a branching upstream has not
        finished: a task below a branch is decided only after the branch
        chose, so an early rule (one_success) cannot race the branch. For
        instance ``index`` of a mapped group's task, a branch in the same
        group is read at that index.
        """
        for up in self._read_upstream(task):  # a branch is never counted
            if self.spec.tasks[up].flow == "normal":
                continue
            if index >= 0 and task is not None and self.groups.per_index(up, task):
                at = self.groups.instance(up, index)
                if at is None or not at.state.finished:
                    return WAITING_FOR_BRANCH
                if at.state is TaskState.SUCCESS and task.task_id in (at.skip_downstream or ()):
                    return f"{up}[{index}]"
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

    def _upstream_counts(self, task: TaskSpec, index: int = -1) -> UpstreamCounts:
        """The trigger rule's input; for instance ``index`` of a mapped group's
        task, an upstream in the same group counts by its instance ``index``."""
        counts = UpstreamCounts()
        counted = self.fan_ins.counted.get(task.task_id)
        if counted is not None:
            # A wide join: its counted upstream tasks as counts, read in one go
            # and moved by this cascade's own decisions; the rest still waits.
            by_state = dict(self.counts.get(task.task_id, {}))
            for state, step in self.overlay.get(task.task_id, {}).items():
                by_state[state] = by_state.get(state, 0) + step
            finished = 0
            for state, n in by_state.items():
                counts.add(state, times=n)
                finished += n
            counts.add(TaskState.NONE, times=max(0, len(counted) - finished))
        self._add_states(counts, self._read_upstream(task), task, index)
        return counts

    def _counts_of(self, task_ids: Sequence[str]) -> UpstreamCounts:
        counts = UpstreamCounts()
        self._add_states(counts, task_ids)
        return counts

    def _add_states(
        self,
        counts: UpstreamCounts,
        task_ids: Sequence[str],
        task: TaskSpec | None = None,
        index: int = -1,
    ) -> None:
        """Each task's states; for instance ``index`` of ``task`` in a mapped
        group, an upstream of the same group counts by its instance ``index``."""
        for up in task_ids:
            summary = self.known[up]
            is_setup = self.spec.tasks[up].is_setup
            if index >= 0 and task is not None and self.groups.per_index(up, task):
                counts.add(self.groups.state_at(up, index), is_setup=is_setup)
            elif summary.mapped_count is None:
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
        if map_group(task) is not None:
            # written before any instance of this task is dispatched (and can finish)
            self.groups.co_expand(task, length)
        base = summary.instance
        for index in range(length):
            ti = TaskInstance(task_id=tid, map_index=index, try_number=base.try_number)
            self.commands.append(schedule(self.spec, task, ti))
        self.known[tid] = TaskSummary(
            base, mapped_count=length, state_counts={TaskState.SCHEDULED: length}
        )
        return False

    def _map_length(self, task: TaskSpec) -> tuple[int, str | None]:
        mapping = task.mapping
        assert mapping is not None
        lengths: list[int] = []
        for name, source in mapping.sources.items():
            length, problem = source_length(source, functools.partial(self._leaf_length, name))
            if problem is not None:
                return 0, problem
            lengths.append(length)
        total = 1
        for n in lengths:
            total *= n
        if mapping.kind == "expand_kwargs":
            total = lengths[0] if lengths else 0
        if total > MAX_MAP_LENGTH:
            return 0, f"mapped to {total} instances, more than the limit of {MAX_MAP_LENGTH}"
        return total, None

    def _leaf_length(self, name: str, source: MapSource) -> tuple[int, str | None]:
        """The length of a literal or of one upstream's result (map keeps it)."""
        if source.literal_length is not None:
            return source.literal_length, None
        up = source.xcom_task_id
        if up is not None and up not in self.known and up in self.spec.tasks:
            self._load([up], upstream=False)  # a mapped group's input, not upstream
        if up is None or up not in self.known:
            return 0, f"mapped argument {name!r} has no source"
        summary = self.known[up]
        if summary.mapped_count is not None:
            return summary.count(TaskState.SUCCESS), None
        if summary.instance.state is not TaskState.SUCCESS:
            return 0, None  # a rule let us run past a non-successful source
        if summary.instance.result_length is None:
            return 0, (
                f"cannot map over the result of task {up!r} for argument {name!r}: "
                "it is not a list or dict"
            )
        return summary.instance.result_length, None
