"""ExternalTaskSensor: waits for another DAG's run, or some of its tasks, at the
matching logical date, reading states through the worker (never the store)."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from chalicelib.core.states import DagRunState, TaskState
from chalicelib.runtime.dag_states import dag_state_reader
from chalicelib.sdk.exceptions import TaskFailed, TaskSkipped
from chalicelib.sdk.sensors import BaseSensorOperator


def _states(value: Iterable[Any] | None, default: Collection[str]) -> list[str]:
    return [str(getattr(s, "value", s)) for s in (default if value is None else value)]


class ExternalTaskSensor(BaseSensorOperator):
    """Airflow's ExternalTaskSensor. With ``external_task_id`` or
    ``external_task_ids`` it waits until every one of those tasks (every map
    index) is in ``allowed_states`` (task states, default success); without
    them, until the whole run is (run states). The run looked at is the
    external DAG's at this run's logical date, moved back by
    ``execution_delta`` or computed by ``execution_date_fn(logical_date[,
    context])`` (one date or a list). Any of them in ``failed_states`` fails
    the sensor (skipped with ``soft_fail``), in ``skipped_states`` skips it."""

    template_fields = ("external_dag_id", "external_task_id", "external_task_ids")

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: dt.timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = f"ExternalTaskSensor (task_id: {self.task_id!r})"
        if external_task_group_id is not None:
            raise ValueError(
                f"{where}: external_task_group_id is not supported; list the group's "
                "tasks in external_task_ids instead"
            )
        if external_task_id is not None and external_task_ids is not None:
            raise ValueError(f"{where}: give external_task_id or external_task_ids, not both")
        if execution_delta is not None and execution_date_fn is not None:
            raise ValueError(f"{where}: give execution_delta or execution_date_fn, not both")
        ids = [external_task_id] if external_task_id is not None else external_task_ids
        self.external_task_ids = list(ids) if ids is not None else None
        if self.external_task_ids is not None and len(set(self.external_task_ids)) != len(
            self.external_task_ids
        ):
            raise ValueError(f"{where}: external_task_ids has duplicates")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.allowed_states = _states(allowed_states, [TaskState.SUCCESS.value])
        self.skipped_states = _states(skipped_states, [])
        self.failed_states = _states(failed_states, [])
        valid = (
            {s.value for s in TaskState}
            if self.external_task_ids is not None
            else {s.value for s in DagRunState}
        )
        kind = "task" if self.external_task_ids is not None else "DAG run"
        for name in ("allowed_states", "skipped_states", "failed_states"):
            wrong = sorted(set(getattr(self, name)) - valid)
            if wrong:
                raise ValueError(
                    f"{where}: {name} has {', '.join(wrong)}, not {kind} states "
                    f"(valid: {', '.join(sorted(valid))})"
                )
        lists = (self.allowed_states, self.skipped_states, self.failed_states)
        if sum(len(set(s)) for s in lists) != len(set().union(*lists)):
            raise ValueError(
                f"{where}: the same state is in more than one of allowed_states, "
                "skipped_states and failed_states"
            )
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = check_existence

    def dates(self, context: Mapping[str, Any]) -> list[dt.datetime]:
        logical = context.get("logical_date")
        if logical is None:
            raise ValueError(
                f"ExternalTaskSensor (task_id: {self.task_id!r}): this run has no logical "
                "date to match"
            )
        if self.execution_delta is not None:
            return [logical - self.execution_delta]
        if self.execution_date_fn is None:
            return [logical]
        takes_context = len(inspect.signature(self.execution_date_fn).parameters) > 1
        found = (
            self.execution_date_fn(logical, context)
            if takes_context
            else self.execution_date_fn(logical)
        )
        return list(found) if isinstance(found, (list, tuple)) else [found]

    def _observed(self, dates: list[dt.datetime]) -> list[list[str]]:
        """One list per (date, task) of the states seen (a run: its one state)."""
        reader = dag_state_reader()
        if self.external_task_ids is None:
            return [[s] if (s := reader.run_state(self.external_dag_id, d)) else [] for d in dates]
        observed: list[list[str]] = []
        for when in dates:
            states = reader.task_states(self.external_dag_id, when, self.external_task_ids)
            observed.extend(states.get(tid, []) for tid in self.external_task_ids)
        return observed

    def poke(self, context: Mapping[str, Any]) -> bool:
        if self.check_existence and not dag_state_reader().dag_exists(self.external_dag_id):
            raise TaskFailed(f"The external DAG {self.external_dag_id} does not exist.")
        dates = self.dates(context)
        observed = self._observed(dates)
        what = (
            f"DAG {self.external_dag_id}"
            if self.external_task_ids is None
            else f"tasks {self.external_task_ids} in DAG {self.external_dag_id}"
        )
        seen = [state for states in observed for state in states]
        if self.failed_states and any(s in self.failed_states for s in seen):
            raise TaskFailed(f"The external {what} failed.", non_retryable=False)
        if self.skipped_states and any(s in self.skipped_states for s in seen):
            raise TaskSkipped(f"The external {what} reached a skipped state.")
        return all(states and all(s in self.allowed_states for s in states) for states in observed)
