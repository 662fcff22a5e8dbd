"""depends_on_past on the store: the engine's view of the previous run, and the
wake-up of the next run when this one's instances change.

A task waiting on its past writes nothing and polls nothing: it stays NONE.
When an instance of a task finishes in run R (a worker's result, a cascade of
skips, an operator's clear or mark), ``wake_next_runs`` looks up the run(s)
whose previous run is R, by logical date (one Query of the runs' by-logical-date
index), and evaluates there only the tasks R's change may unblock
(``DagSpec.past_wakes``). Work per event is that one Query plus the
evaluation of those few tasks. A wake lost to a crash between the write and
the wake is caught by the tick's stall check (``Reconcile`` evaluates the run
whole, reading the past again).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from chalicelib.core.commands import (
    Command,
    Event,
    PastChanged,
    RunStateView,
    SetTaskState,
    TaskFinished,
    TaskSummary,
)
from chalicelib.core.past import SATISFYING
from chalicelib.core.runs import DagRun, RunType
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState
from chalicelib.scheduler.specs import SpecCache
from chalicelib.store.base import StateStore

if TYPE_CHECKING:
    from chalicelib.scheduler.service import Scheduler

PAGE = 10
"""Runs read per Query while looking past manual runs (catchup DAGs skip them)."""


class StorePreviousRun:
    """A previous run read from the store, its instances loaded on demand."""

    def __init__(self, store: StateStore, specs: SpecCache, run: DagRun):
        self._store = store
        self._spec = specs.get(run.dag_id, run.version)
        self._run = run
        self._view: RunStateView | None = None

    @property
    def run(self) -> DagRun:
        return self._run

    def has_task(self, task_id: str) -> bool:
        return task_id in self._spec.tasks

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        known = [t for t in task_ids if t in self._spec.tasks]
        if not known:
            return {}
        if self._view is None:  # one view for every task a cascade checks
            self._view = self._store.run_view(self._run.dag_id, self._run.run_id, self._spec)
        return self._view.summaries(known)


class StorePastView:
    """The engine's ``PastView`` over a state store (core.past)."""

    def __init__(self, store: StateStore, specs: SpecCache):
        self._store = store
        self._specs = specs

    def previous_run(self, run: DagRun, *, scheduled_only: bool) -> StorePreviousRun | None:
        before = run.logical_date
        while before is not None:
            page = self._store.runs_by_logical_date(run.dag_id, before=before, limit=PAGE)
            for found in page:
                if not (scheduled_only and found.run_type is RunType.MANUAL):
                    return StorePreviousRun(self._store, self._specs, found)
            before = page[-1].logical_date if len(page) == PAGE else None
        return None

    def first_in_backfill(self, run: DagRun) -> bool:
        if run.backfill_id is None:
            return False
        backfill = self._store.backfills.get(run.backfill_id)
        return (
            backfill is not None and bool(backfill.dates) and backfill.dates[0] == run.logical_date
        )


def next_runs(store: StateStore, run: DagRun, *, scheduled_only: bool) -> list[DagRun]:
    """The runs whose previous run is ``run``: the next one by logical date; with
    ``scheduled_only`` (catchup) every run up to and including the next
    non-manual one, and none when ``run`` itself is manual."""
    if run.logical_date is None or (scheduled_only and run.run_type is RunType.MANUAL):
        return []
    found: list[DagRun] = []
    after = run.logical_date
    while True:
        page = store.runs_by_logical_date(run.dag_id, after=after, limit=PAGE)
        for candidate in page:
            found.append(candidate)
            if not scheduled_only or candidate.run_type is not RunType.MANUAL:
                return found
        if len(page) < PAGE:
            return found
        after = page[-1].logical_date


def changed_tasks(event: Event | None, effective: Iterable[Command]) -> set[str]:
    """Tasks whose instances may have just ended success or skipped."""
    changed = {
        c.task_id for c in effective if isinstance(c, SetTaskState) and c.state in SATISFYING
    }
    if isinstance(event, TaskFinished):
        changed.add(event.task_id)  # the worker wrote its state; which one is not read here
    return changed


def wake_next_runs(
    scheduler: Scheduler, run: DagRun, spec: DagSpec, changed: Iterable[str]
) -> None:
    """Evaluate, in the run(s) following ``run``, the tasks ``changed`` may unblock."""
    wakes = spec.past_wakes
    targets = sorted({w for tid in changed for w in wakes.get(tid, ())})
    if not targets:
        return
    for following in next_runs(scheduler.store, run, scheduled_only=spec.catchup):
        if following.state is not DagRunState.RUNNING:
            continue  # a queued run reads its past when it starts; a finished one is done
        following_spec = scheduler.specs.get(following.dag_id, following.version)
        scheduler.advance(following, following_spec, PastChanged(tuple(targets)))
