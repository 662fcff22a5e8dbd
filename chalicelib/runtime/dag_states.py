"""What a running task may learn about other DAG runs: their state and their
tasks' states at a logical date (ExternalTaskSensor reads this).

The worker sets a reader backed by the state store for the try's tenant; a
task never touches the store itself, and sees only DAGs of its own tenant.
Outside a worker (``dags test``) no other run exists: the reader finds nothing,
so an ExternalTaskSensor waits, as Airflow's would with no such run.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.states import TaskState

# Run types whose run id is derived from the logical date (an event run's is not).
_DATED_RUN_TYPES = (RunType.SCHEDULED, RunType.MANUAL, RunType.BACKFILL)


class DagStateReader(Protocol):
    def dag_exists(self, dag_id: str) -> bool: ...

    def run_state(self, dag_id: str, logical_date: dt.datetime) -> str | None:
        """The state of ``dag_id``'s run at ``logical_date``; None without one."""
        ...

    def task_states(
        self, dag_id: str, logical_date: dt.datetime, task_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """Each task's instance states in that run (one per map index; a task
        the run does not have, or no run, gives an empty list)."""
        ...


class NoOtherRuns:
    """The reader when none is set: no other run is known."""

    def dag_exists(self, dag_id: str) -> bool:
        return False

    def run_state(self, dag_id: str, logical_date: dt.datetime) -> str | None:
        return None

    def task_states(
        self, dag_id: str, logical_date: dt.datetime, task_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        return {tid: [] for tid in task_ids}


_READER: contextvars.ContextVar[DagStateReader | None] = contextvars.ContextVar(
    "slipstream_dag_state_reader", default=None
)


def dag_state_reader() -> DagStateReader:
    return _READER.get() or NoOtherRuns()


@contextlib.contextmanager
def reading_dag_states(reader: DagStateReader) -> Iterator[None]:
    token = _READER.set(reader)
    try:
        yield
    finally:
        _READER.reset(token)


class StoreDagStateReader:
    """Reads runs through the state store, by the deterministic run ids of a
    logical date (scheduled, manual and backfill runs): at most three reads for
    a run and one batch for its tasks. ``specs`` gives a run's pinned spec
    (``SpecCache.get``) for the view of its mapped tasks."""

    def __init__(self, store: Any, specs: Any, tenant: str | None):
        self.store = store
        self.specs = specs
        self.tenant = tenant

    def dag_exists(self, dag_id: str) -> bool:
        record = self.store.get_dag(dag_id)
        # another tenant's DAG is as good as absent
        return record is not None and (record.tenant or None) == (self.tenant or None)

    def _run(self, dag_id: str, logical_date: dt.datetime) -> DagRun | None:
        if not self.dag_exists(dag_id):
            return None
        for run_type in _DATED_RUN_TYPES:
            run = self.store.get_run(dag_id, make_run_id(run_type, logical_date))
            if run is not None:
                return run
        return None

    def run_state(self, dag_id: str, logical_date: dt.datetime) -> str | None:
        run = self._run(dag_id, logical_date)
        return None if run is None else run.state.value

    def task_states(
        self, dag_id: str, logical_date: dt.datetime, task_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {tid: [] for tid in task_ids}
        run = self._run(dag_id, logical_date)
        if run is None:
            return found
        spec = self.specs.get(dag_id, run.version)
        known = [tid for tid in task_ids if tid in spec.tasks]
        if not known:
            return found
        view = self.store.run_view(dag_id, run.run_id, spec)
        for tid, summary in view.summaries(known).items():
            if summary.mapped_count is None:
                found[tid] = [summary.instance.state.value]
            else:
                found[tid] = [
                    state.value
                    for state in TaskState
                    for _ in range(summary.state_counts.get(state, 0))
                ]
        return found
