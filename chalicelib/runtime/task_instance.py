"""The ``ti`` a running task sees: identity, try number and XCom access.

``xcom_pull`` follows Airflow 2's semantics: one task id gives one value (the
list of every instance's value when that task is mapped and no map index is
asked for); a list of task ids, or of map indexes, gives a flat list of the
values found, in the order asked, missing ones left out. Unlike Airflow 2,
``task_ids=None`` means the current task (Airflow 3 does the same) rather than
"any task", which a per-run store cannot answer cheaply.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.states import TaskState
from chalicelib.runtime.xcom import RETURN_VALUE_KEY, XComStore

IsMapped = Callable[[str], bool]


class RuntimeTaskInstance:
    """One try of one task instance, as the task's own code sees it."""

    def __init__(
        self,
        *,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int,
        try_number: int,
        max_tries: int,
        task: Any,
        xcoms: XComStore,
        is_mapped: IsMapped,
        logical_date: dt.datetime | None = None,
        start_date: dt.datetime | None = None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        first_reschedule_date: dt.datetime | None = None,
        relevant_map_index: Callable[[str], int | None] | None = None,
    ):
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.map_index = map_index
        self.try_number = try_number
        self.max_tries = max_tries
        self.task = task
        self.logical_date = logical_date
        self.start_date = start_date
        self.end_date: dt.datetime | None = None
        self.state: TaskState = TaskState.RUNNING
        self.log = log or logging.getLogger("slipstream.task")
        self._xcoms = xcoms
        self._is_mapped = is_mapped
        self._skip_downstream: list[str] | None = None
        self._first_reschedule_date = first_reschedule_date
        self._relevant_map_index = relevant_map_index
        # This instance's arguments of its mapped task group (runtime.mapped_groups).
        self.group_arguments: dict[str, Any] | None = None
        # The try's template fields once rendered, masked and bounded (runtime.rendered_fields).
        self.rendered_fields: str | None = None

    def relevant_map_index(self, task_id: str) -> int | None:
        """The instance of ``task_id`` whose result an XComArg gives this one: the
        same map index for a task of the same mapped group (Airflow), else None."""
        return self._relevant_map_index(task_id) if self._relevant_map_index else None

    def get_first_reschedule_date(self, context: Any = None) -> dt.datetime | None:
        """When this try first poked, if a sensor rescheduled it before (Airflow 3's
        name); None on the first poke. A sensor's ``timeout`` counts from here."""
        return self._first_reschedule_date

    # Airflow's names for the same facts, so templates written for it still work.
    @property
    def execution_date(self) -> dt.datetime | None:
        return self.logical_date

    @property
    def operator(self) -> str:
        return type(self.task).__name__

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index)

    def xcom_push(self, key: str, value: Any, execution_date: Any = None) -> None:
        """Store ``value`` under ``key`` for this instance; it must be JSON data."""
        if execution_date is not None:
            raise SlipstreamError("xcom_push(execution_date=...) is not supported")
        self._xcoms.push(self.task_id, self.map_index, key, value)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str = RETURN_VALUE_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """Values pushed in this run; ``include_prior_dates`` is accepted and ignored."""
        if dag_id is not None and dag_id != self.dag_id:
            raise SlipstreamError(
                f"task {self.task_id!r}: xcom_pull from another DAG ({dag_id!r}) "
                "is not supported; results are kept per run"
            )
        del include_prior_dates
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str) and not _is_many(map_indexes):
            return self._pull_one(task_ids, key, map_indexes, default)
        ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        values: list[Any] = []
        for tid in ids:
            values.extend(self._pull_many(tid, key, map_indexes))
        return values

    def _pull_one(self, task_id: str, key: str, map_index: Any, default: Any) -> Any:
        if map_index is None and self._is_mapped(task_id):
            # A mapped task's results are a sequence, empty when no instance
            # pushed one (all returned None, or the map had zero length).
            return self._xcoms.pull_mapped(task_id, key)
        index = -1 if map_index is None else int(map_index)
        found, value = self._xcoms.pull(task_id, index, key)
        return value if found else default

    def _pull_many(self, task_id: str, key: str, map_indexes: Any) -> list[Any]:
        if map_indexes is None:
            if self._is_mapped(task_id):
                return self._xcoms.pull_mapped(task_id, key)
            indexes: Iterable[int] = (-1,)
        elif isinstance(map_indexes, int):
            indexes = (map_indexes,)
        else:
            indexes = map_indexes
        found_values = []
        for index in indexes:
            found, value = self._xcoms.pull(task_id, int(index), key)
            if found:
                found_values.append(value)
        return found_values

    def skip_downstream(self, task_ids: Iterable[str]) -> None:
        """Record direct downstream tasks to skip (branching, short-circuit)."""
        if self._skip_downstream is None:
            self._skip_downstream = []
        for tid in task_ids:
            if tid not in self._skip_downstream:
                self._skip_downstream.append(tid)

    @property
    def skipped_downstream(self) -> tuple[str, ...] | None:
        """None when the task asked for nothing; an empty tuple means "skip none"."""
        return None if self._skip_downstream is None else tuple(self._skip_downstream)

    def __repr__(self) -> str:
        index = "" if self.map_index < 0 else f"[{self.map_index}]"
        return (
            f"<TaskInstance: {self.dag_id}.{self.task_id}{index} {self.run_id} "
            f"try {self.try_number} [{self.state.value}]>"
        )


def _is_many(map_indexes: Any) -> bool:
    return map_indexes is not None and not isinstance(map_indexes, int)
