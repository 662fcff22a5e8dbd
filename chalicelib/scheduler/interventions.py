"""An operator's changes to a run: clear task instances, mark them, mark the run.

Each change is a conditional write on the instance's current state and try, so
a change that races a worker either wins (the worker's own record then fails
its condition and is dropped) or is skipped. Counters move in the same write
as the state they count. What follows is the scheduler's business: a
``RunChanged`` message makes it start a reopened run, re-evaluate a running
one and finish it when nothing is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chalicelib.core.messages import RunChanged
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.selection import related_tasks
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.executors.base import DispatchError
from chalicelib.scheduler.service import Scheduler

log = logging.getLogger("slipstream.scheduler")

UNCLEARABLE = frozenset({TaskState.NONE, TaskState.QUEUED, TaskState.RUNNING})
"""A try that is queued or running is left alone by a clear (Airflow would
restart it; here its worker finishes it); NONE has nothing to clear."""

RESET_FIELDS = {
    "end_date": None,
    "start_date": None,
    "next_try_at": None,
    "error": None,
    "skip_downstream": None,
    "result_length": None,
    "rendered_map_index": None,
    "wait_key": None,
    "wait_rank": None,
    "first_poke_at": None,
    "external_executor_id": None,
    "slots": (),
}


@dataclass(frozen=True)
class Changed:
    """One instance an operator's action changed (or, in a dry run, would change)."""

    before: TaskInstance
    after: TaskState


def run_instances(scheduler: Scheduler, run: DagRun, spec: DagSpec) -> list[TaskInstance]:
    """Every instance of a run, records or not, in task and map-index order
    (an expanded mapped task is its indices, an unexpanded one its -1)."""
    view = scheduler.store.run_view(run.dag_id, run.run_id, spec)
    found: list[TaskInstance] = []
    for task_id, summary in sorted(view.summaries(list(spec.tasks)).items()):
        if summary.mapped_count is None:
            found.append(summary.instance)
            continue
        for index in range(summary.mapped_count):
            found.append(view.instance(task_id, index) or TaskInstance(task_id, index))
    return found


class Interventions:
    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.store = scheduler.store

    def clear(
        self, run: DagRun, spec: DagSpec, targets: Iterable[TaskInstance], *, dry_run: bool
    ) -> list[Changed]:
        """Back to NONE (its next try is ``try_number + 1``); a finished run reopens."""
        plan = [Changed(ti, TaskState.NONE) for ti in targets if ti.state not in UNCLEARABLE]
        if dry_run or not plan:
            return plan
        now = self.scheduler.clock()
        done = [
            change
            for change in plan
            if self.store.transition(
                run.dag_id,
                run.run_id,
                spec,
                change.before.task_id,
                change.before.map_index,
                expected=change.before.state,
                new=TaskState.NONE,
                try_number=change.before.try_number,
                now=now,
                read_outcome=False,
                releases=change.before.slots,
                retry_base=change.before.try_number,  # its retries start afresh
                infra_failures=0,
                **RESET_FIELDS,
            ).won
        ]
        current = self.store.get_run(run.dag_id, run.run_id) or run
        if current.state.finished:
            self.store.reopen_run(run.dag_id, run.run_id, current.state)
        self._changed(run)
        return done

    def mark(
        self,
        run: DagRun,
        spec: DagSpec,
        targets: Iterable[TaskInstance],
        state: TaskState,
        *,
        dry_run: bool,
    ) -> list[Changed]:
        """Set instances to success, failed or skipped whatever they were doing.

        Then, as Airflow's ``set_task_instance_state`` does, the failed and
        upstream-failed instances downstream of them are cleared so they can
        run again (which reopens a finished run); the run's own state is not
        recomputed otherwise.
        """
        plan = [Changed(ti, state) for ti in targets if ti.state is not state]
        if dry_run or not plan:
            return plan
        done = self._apply_marks(run, spec, plan)
        marked = {c.before.key for c in done}
        below = related_tasks(spec, {task for task, _ in marked}, upstream=False, downstream=True)
        to_clear = [
            ti
            for ti in run_instances(self.scheduler, run, spec)
            if ti.task_id in below
            and ti.key not in marked
            and ti.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
        ]
        if to_clear:
            self.clear(run, spec, to_clear, dry_run=False)
        elif (
            spec.past_wakes  # a finished run's mark can meet the next run's depends_on_past
            or (self.store.get_run(run.dag_id, run.run_id) or run).state is DagRunState.RUNNING
        ):
            self._changed(run)
        return done

    def set_run_state(
        self, run: DagRun, spec: DagSpec, state: DagRunState, *, dry_run: bool = False
    ) -> list[Changed]:
        """Mark the run success or failed as Airflow does: success marks every
        instance success; failed fails the running ones and skips those not
        started. The run's state is set first, so no hand-off starts more tries."""
        instances = run_instances(self.scheduler, run, spec)
        if state is DagRunState.SUCCESS:
            plan = [
                Changed(ti, TaskState.SUCCESS)
                for ti in instances
                if ti.state is not TaskState.SUCCESS
            ]
        else:
            plan = [
                Changed(
                    ti,
                    TaskState.FAILED
                    if ti.state in (TaskState.RUNNING, TaskState.QUEUED)
                    else TaskState.SKIPPED,
                )
                for ti in instances
                if not ti.state.finished
            ]
        if dry_run or run.state is state:
            return plan
        now = self.scheduler.clock()
        if run.state is DagRunState.RUNNING:
            changed = self.store.finish_run(run.dag_id, run.run_id, state, now)
        else:
            changed = self.store.restate_run(run.dag_id, run.run_id, run.state, state, now)
        if not changed:
            return []  # the run moved meanwhile; the caller reads it again
        done = self._apply_marks(run, spec, plan)
        if spec.past_wakes:
            self._changed(run)  # the next run's depends_on_past tasks may now start
        return done

    def _apply_marks(self, run: DagRun, spec: DagSpec, plan: Sequence[Changed]) -> list[Changed]:
        now = self.scheduler.clock()
        done: list[Changed] = []
        for change in plan:
            ti = change.before
            result = self.store.transition(
                run.dag_id,
                run.run_id,
                spec,
                ti.task_id,
                ti.map_index,
                expected=ti.state,
                new=change.after,
                try_number=ti.try_number,
                now=now,
                read_outcome=False,
                releases=ti.slots,
                manual=True,
                end_date=now,
                next_try_at=None,
                wait_key=None,
                wait_rank=None,
                slots=(),
            )
            if result.won:
                done.append(change)
                if ti.state in (TaskState.QUEUED, TaskState.RUNNING) and ti.external_executor_id:
                    self._stop_container(ti, change.after)
        return done

    def _stop_container(self, ti: TaskInstance, after: TaskState) -> None:
        """Stop the ECS task still running a try an operator just marked: the mark
        has won already (the worker's late record loses its condition), so a
        failed stop is logged and the container runs on to no effect."""
        executor = self.scheduler.executors.get("ecs")
        stop = getattr(executor, "stop", None)
        if stop is None or ti.external_executor_id is None:
            return
        try:
            stop(ti.external_executor_id, f"Slipstream: {ti.label} marked {after.value}")
        except DispatchError as exc:
            log.warning("could not stop %s of %s: %s", ti.external_executor_id, ti.label, exc)

    def _changed(self, run: DagRun) -> None:
        self.scheduler.queue.send(RunChanged(dag_id=run.dag_id, run_id=run.run_id))
