"""Airflow's ``depends_on_past`` and ``wait_for_downstream`` (its PrevDagrunDep), decided purely.

A task with ``depends_on_past`` runs in a run only when its instances in the
*previous* run all ended success or skipped; with ``wait_for_downstream`` its
direct downstream tasks there must have, too. The previous run is the DAG's run
with the latest logical date before this run's (any run type), or, when the DAG
has ``catchup``, the latest such run that is not manual (Airflow's
``get_previous_scheduled_dagrun``). A run without one (the first run, or a run
without a logical date) passes, as does the first run of a backfill.

The engine reads the past through ``PastView``, a narrow view the store-side
adapter supplies; nothing here reads state by itself. A task whose past is not
met simply stays NONE (Airflow shows no state): the scheduler wakes it when the
previous run's instance, or a downstream of it, changes (scheduler.past).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from chalicelib.core.commands import TaskSummary
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec, TaskSpec
from chalicelib.core.states import TaskState

SATISFYING = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})
"""What Airflow counts as a successful past instance (``_SUCCESSFUL_STATES``)."""


class PastUnavailable(SlipstreamError):
    """A task depends on the past but its caller gave the engine no view of it."""


class PreviousRun(Protocol):
    """The previous run of the run being evaluated, read on demand."""

    @property
    def run(self) -> DagRun: ...

    def has_task(self, task_id: str) -> bool:
        """Whether the DAG version this run pinned has the task (Airflow: has TIs)."""
        ...

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        """The tasks' summaries in the previous run (tasks it does not have are absent)."""
        ...


class PastView(Protocol):
    """What the engine may know about runs before the one it evaluates."""

    def previous_run(self, run: DagRun, *, scheduled_only: bool) -> PreviousRun | None:
        """The latest run of the same DAG with an earlier logical date (not manual
        when ``scheduled_only``); None when there is none."""
        ...

    def first_in_backfill(self, run: DagRun) -> bool:
        """True for the run of a backfill's first planned date (Airflow's sort_ordinal 1)."""
        ...


class NoHistory:
    """The past of a run that has no earlier runs (``dags test``): always met."""

    def previous_run(self, run: DagRun, *, scheduled_only: bool) -> PreviousRun | None:
        return None

    def first_in_backfill(self, run: DagRun) -> bool:
        return False


NO_HISTORY = NoHistory()
"""``dags test`` runs one run and no earlier ones: every past is met, as in
Airflow's ``dag.test()`` on an empty metadata database."""


def needs_past(spec: DagSpec) -> bool:
    """Whether any task of the DAG waits on a previous run."""
    return any(t.depends_on_past or t.wait_for_downstream for t in spec.tasks.values())


def all_satisfying(summary: TaskSummary) -> bool:
    """Every instance of the task (each map index) ended success or skipped."""
    if summary.mapped_count is None:
        return summary.instance.state in SATISFYING
    done = sum(summary.count(state) for state in SATISFYING)
    return done >= summary.mapped_count


class PastCheck:
    """Evaluates PrevDagrunDep for the tasks of one run, reading the previous run once."""

    def __init__(self, spec: DagSpec, run: DagRun | None, past: PastView | None):
        self.spec = spec
        self.run = run
        self.past = past
        self._previous: PreviousRun | None = None
        self._looked = False

    def waiting_reason(self, task: TaskSpec) -> str | None:
        """None when ``task`` may run as far as its past is concerned; else why not."""
        if not (task.depends_on_past or task.wait_for_downstream):
            return None
        run = self.run
        if run is None or self.past is None:
            raise PastUnavailable(
                f"task {task.task_id!r} depends on the past, but no view of earlier runs was given"
            )
        if run.logical_date is None:
            return None  # Airflow: a run without a logical date has no previous run
        if run.backfill_id is not None and self.past.first_in_backfill(run):
            return None
        previous = self._previous_run(run)
        if previous is None:
            return None  # the first run of the DAG
        start = self.spec.start_date
        before = previous.run.logical_date
        if self.spec.catchup and start is not None and before is not None and before < start:
            return None  # the task was not active back then
        if not previous.has_task(task.task_id):
            if task.ignore_first_depends_on_past:
                return None
            return f"depends_on_past: {task.task_id} has not run in {previous.run.run_id}"
        wanted = [task.task_id]
        if task.wait_for_downstream:
            wanted += [d for d in task.downstream if previous.has_task(d)]
        summaries = previous.summaries(wanted)
        own = summaries.get(task.task_id)
        if own is None or not all_satisfying(own):
            return f"depends_on_past: {task.task_id} did not succeed in {previous.run.run_id}"
        if task.wait_for_downstream:
            for down in wanted[1:]:
                summary = summaries.get(down)
                if summary is not None and not all_satisfying(summary):
                    return f"wait_for_downstream: {down} has not completed in {previous.run.run_id}"
        return None

    def _previous_run(self, run: DagRun) -> PreviousRun | None:
        if not self._looked:
            assert self.past is not None
            self._previous = self.past.previous_run(run, scheduled_only=self.spec.catchup)
            self._looked = True
        return self._previous
