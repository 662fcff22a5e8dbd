"""One cascade of trigger-rule evaluations, the heart of ``engine.decide``.

It evaluates the tasks an event touches, then whatever its own skips and
upstream failures reach, and keeps a local overlay of its own decisions
(commands not written yet), including their effect on wide joins' counts.
"""

from __future__ import annotations

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
from chalicelib.core.runs import TaskInstance
from chalicelib.core.setup_teardown import indirect_setup_verdict
from chalicelib.core.spec import DagSpec, TaskSpec
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

    def __init__(self, spec: DagSpec, view: RunStateView):
        self.spec = spec
        self.view = view
        self.fan_ins = spec.fan_ins
        self.known: dict[str, TaskSummary] = {}
        self.counts: dict[str, FanInCounts] = {}  # wide joins' counts as read
        # what this cascade's own decisions (not written yet) change in them
        self.overlay: dict[str, dict[TaskState, int]] = {}
        self.commands: list[Command] = []

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
            if self._skipped_by_branch(task) is not None:
                continue
            if evaluate(task.trigger_rule, self._upstream_counts(task)) is Verdict.RUN:
                commands.append(schedule(self.spec, task, ti))
        return commands

    def run(self, candidates: Iterable[str]) -> list[Command]:
        tasks = self.spec.tasks
        wave = list(dict.fromkeys(candidates))
        while wave:
            self._load(wave)
            changed: list[str] = []
            for tid in wave:
                if self._evaluate(tasks[tid]):
                    changed.append(tid)
            nxt: dict[str, None] = {}
            for tid in changed:
                for down in self.after(tid):
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
        setups = self.spec.indirect_setups.get(task.task_id)
        if setups:
            # Airflow's implicit all_success on the setups of the task's scope;
            # its failure or skip wins over the task's own rule.
            constraint = indirect_setup_verdict(self._counts_of(setups))
            if constraint is not Verdict.RUN:
                if not counts.all_done or constraint is Verdict.WAIT:
                    return False
                verdict = constraint
        if verdict is Verdict.SKIP:
            self._decided(task.task_id, TaskState.SKIPPED, "trigger rule")
            return True
        if verdict is Verdict.UPSTREAM_FAILED:
            self._decided(task.task_id, TaskState.UPSTREAM_FAILED, "trigger rule")
            return True
        if task.mapping is None:
            self.commands.append(schedule(self.spec, task, summary.instance))
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
        for up in self._read_upstream(task):  # a branch is never counted
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
        self._add_states(counts, self._read_upstream(task))
        return counts

    def _counts_of(self, task_ids: Sequence[str]) -> UpstreamCounts:
        counts = UpstreamCounts()
        self._add_states(counts, task_ids)
        return counts

    def _add_states(self, counts: UpstreamCounts, task_ids: Sequence[str]) -> None:
        for up in task_ids:
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
