"""One run's items read back as the engine's view, and items as domain objects.

Split from store.dynamodb: reading is one idea, the conditional writes another.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core.engine import TaskSummary
from chalicelib.core.fan_in import FanInCounts, counts_from_entry
from chalicelib.core.progress import RunProgress
from chalicelib.core.runs import DagRun, RunType, TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.store.changes import missing_instance
from chalicelib.store.models import (
    DEFAULT_TENANT,
    MAP_COUNT_KEY,
    MAP_WINDOW_KEY,
    instance_pk,
    instance_sk,
    split_instance_sk,
)

if TYPE_CHECKING:
    from chalicelib.store.dynamodb import DynamoStateStore


class DynamoRunView:
    """The engine's ``RunStateView`` over one run's items, read on demand."""

    def __init__(self, store: DynamoStateStore, dag_id: str, run_id: str, spec: DagSpec):
        self._store = store
        self._dag_id = dag_id
        self._run_id = run_id
        self._model = store.models.task_instance
        self._pk = instance_pk(dag_id, run_id)
        self._spec = spec

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        ids = list(dict.fromkeys(task_ids))
        keys = [(self._pk, instance_sk(tid, -1)) for tid in ids]
        found = {
            split_instance_sk(item.sk)[0]: item
            for item in self._model.batch_get(keys, consistent_read=True)
        }
        expanded = [tid for tid in ids if tid in found and found[tid].mcount is not None]
        run_item = self._run_item() if expanded else None
        result: dict[str, TaskSummary] = {}
        for tid in ids:
            item = found.get(tid)
            if item is None:
                result[tid] = TaskSummary(missing_instance(tid, -1))
            elif item.mcount is None:
                result[tid] = TaskSummary(_instance_from_item(item))
            else:
                entry = _map_entry(run_item, tid)
                result[tid] = TaskSummary(
                    _instance_from_item(item),
                    mapped_count=int(item.mcount),
                    state_counts=_tallies(entry),
                    window=map_window(entry),
                )
        return result

    def fan_in(self, join_ids: Collection[str]) -> Mapping[str, FanInCounts]:
        """The wide joins' counts: one read of the run item, however wide."""
        run_item = self._run_item()
        return {join: fan_in_counts(run_item, join) for join in join_ids}

    def _run_item(self) -> Any:
        """The run item, for its map tallies (read only when a summary needs them)."""
        return self._store.models.dag_run.get(self._dag_id, self._run_id, consistent_read=True)

    def _placeholder_count(self, task_id: str) -> int:
        try:
            item = self._model.get(self._pk, instance_sk(task_id, -1), consistent_read=True)
        except DoesNotExist:
            return 0
        return 0 if item.mcount is None else int(item.mcount)

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None:
        try:
            item = self._model.get(self._pk, instance_sk(task_id, map_index), consistent_read=True)
        except DoesNotExist:
            if map_index < 0:
                return missing_instance(task_id, -1) if task_id in self._spec.tasks else None
            if map_index < self._placeholder_count(task_id):
                return missing_instance(task_id, map_index)
            return None
        return _instance_from_item(item)

    def unfinished(self) -> Iterable[TaskInstance]:
        """Every unfinished instance, records or not: reads the whole run (timeouts only)."""
        stored: dict[tuple[str, int], Any] = {}
        for item in self._model.query(self._pk, consistent_read=True):
            stored[split_instance_sk(item.sk)] = item
        found: list[TaskInstance] = []
        for tid in self._spec.tasks:
            placeholder = stored.get((tid, -1))
            count = None if placeholder is None else placeholder.mcount
            indices: Iterable[int] = [-1] if count is None else range(int(count))
            for index in indices:
                item = stored.get((tid, index))
                ti = missing_instance(tid, index) if item is None else _instance_from_item(item)
                if not ti.state.finished:
                    found.append(ti)
        return found


# --------------------------------------------------------------- items


def _map_entry(run_item: Any, task_id: str) -> dict[str, Any]:
    """A mapped task's entry in the run item's ``maps``: count and tallies."""
    maps = run_item.maps
    raw = maps.as_dict() if hasattr(maps, "as_dict") else dict(maps or {})
    entry = raw.get(task_id)
    return dict(entry) if entry else {}


def fan_in_counts(run_item: Any, join: str) -> dict[TaskState, int]:
    """A wide join's counts in the run item's ``fanin`` (core.fan_in)."""
    fanin = run_item.fanin
    raw = fanin.as_dict() if hasattr(fanin, "as_dict") else dict(fanin or {})
    return counts_from_entry(raw.get(join) or {})


def _tallies(entry: dict[str, Any]) -> dict[TaskState, int]:
    return {
        TaskState(key): int(value)
        for key, value in entry.items()
        if key not in (MAP_COUNT_KEY, MAP_WINDOW_KEY) and int(value)
    }


def map_window(entry: dict[str, Any]) -> int | None:
    window = entry.get(MAP_WINDOW_KEY)
    return None if window is None else int(window)


def _instance_from_item(item: Any) -> TaskInstance:
    task_id, map_index = split_instance_sk(item.sk)
    skip = tuple(item.skip or ()) if item.skip_set else None
    return TaskInstance(
        task_id=task_id,
        map_index=map_index,
        state=TaskState(item.st) if item.st else TaskState.NONE,
        try_number=int(item.try_n or 0),
        queued_at=item.queued,
        start_date=item.start,
        end_date=item.end,
        next_try_at=item.next_try,
        skip_downstream=skip,
        result_length=None if item.rlen is None else int(item.rlen),
        rendered_map_index=item.rmi,
        rendered_fields=item.rf,
        error=item.err,
        slots=tuple(item.slt or ()),
        wait_key=item.wq,
        wait_rank=item.wp,
        retry_base=int(item.rb or 0),
        infra_failures=int(item.inf or 0),
        first_poke_at=item.poke0,
        external_executor_id=item.xid,
        # A deferred QUEUED try's ``hb`` is when to dispatch it again, not a beat.
        last_heartbeat_at=item.hb if item.st == TaskState.RUNNING.value else None,
    )


def _run_from_item(item: Any) -> DagRun:
    return DagRun(
        dag_id=item.dag_id,
        run_id=item.run_id,
        run_type=RunType(item.run_type),
        logical_date=item.logical,
        data_interval_start=item.di_start,
        data_interval_end=item.di_end,
        run_after=item.run_after,
        version=item.ver or "",
        conf=json.loads(item.conf) if item.conf else {},
        state=DagRunState(item.st),
        start_date=item.start,
        end_date=item.end,
        note=item.note,
        tenant=None if item.tn in (None, DEFAULT_TENANT) else item.tn,
        backfill_id=None if item.bf is None else int(item.bf),
    )


def _progress_from_item(item: Any) -> RunProgress:
    return RunProgress(int(item.total or 0), int(item.done or 0), int(item.failed or 0))
