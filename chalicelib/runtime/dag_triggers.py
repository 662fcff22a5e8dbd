"""How a running task starts another DAG's run and follows it
(TriggerDagRunOperator), without touching the store or the scheduler itself.

The worker sets a trigger backed by the scheduler for the try's tenant. Under
``dags test`` none is set: no other DAG is deployed there, so triggering one
fails the task with a line that says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, Protocol


class DagTriggerUnavailable(RuntimeError):
    """No deployed DAGs to trigger here (a local test run)."""


class DagTrigger(Protocol):
    def trigger(
        self, dag_id: str, *, run_id: str, logical_date: dt.datetime, conf: Mapping[str, Any]
    ) -> bool:
        """Create the run; False when a run with that id exists already."""
        ...

    def reset(self, dag_id: str, run_id: str) -> None:
        """Clear every instance of that run, so it runs again (reset_dag_run)."""
        ...

    def run_state(self, dag_id: str, run_id: str) -> str | None: ...


class NoTrigger:
    def _refuse(self) -> DagTriggerUnavailable:
        return DagTriggerUnavailable(
            "triggering another DAG needs a deployment (slipstream dev or AWS); "
            "dags test runs one DAG only"
        )

    def trigger(
        self, dag_id: str, *, run_id: str, logical_date: dt.datetime, conf: Mapping[str, Any]
    ) -> bool:
        raise self._refuse()

    def reset(self, dag_id: str, run_id: str) -> None:
        raise self._refuse()

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        raise self._refuse()


_TRIGGER: contextvars.ContextVar[DagTrigger | None] = contextvars.ContextVar(
    "slipstream_dag_trigger", default=None
)


def dag_trigger() -> DagTrigger:
    return _TRIGGER.get() or NoTrigger()


@contextlib.contextmanager
def triggering_dags(trigger: DagTrigger) -> Iterator[None]:
    token = _TRIGGER.set(trigger)
    try:
        yield
    finally:
        _TRIGGER.reset(token)


class SchedulerDagTrigger:
    """Backed by the scheduler (``Scheduler.trigger``, clears through
    ``Interventions``); DAGs of other tenants are as good as absent."""

    def __init__(self, scheduler: Any, tenant: str | None):
        self.scheduler = scheduler
        self.tenant = tenant

    def _check_tenant(self, dag_id: str) -> None:
        record = self.scheduler.store.get_dag(dag_id)
        if record is None or (record.tenant or None) != (self.tenant or None):
            raise LookupError(f"no deployed DAG {dag_id!r}")

    def trigger(
        self, dag_id: str, *, run_id: str, logical_date: dt.datetime, conf: Mapping[str, Any]
    ) -> bool:
        self._check_tenant(dag_id)
        _, created = self.scheduler.trigger(
            dag_id, conf=dict(conf), logical_date=logical_date, run_id=run_id
        )
        return bool(created)

    def reset(self, dag_id: str, run_id: str) -> None:
        from chalicelib.scheduler.interventions import Interventions, run_instances

        self._check_tenant(dag_id)
        run = self.scheduler.store.get_run(dag_id, run_id)
        if run is None:
            return
        spec = self.scheduler.specs.get(dag_id, run.version)
        instances = run_instances(self.scheduler, run, spec)
        Interventions(self.scheduler).clear(run, spec, instances, dry_run=False)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        self._check_tenant(dag_id)
        run = self.scheduler.store.get_run(dag_id, run_id)
        return None if run is None else str(run.state.value)
