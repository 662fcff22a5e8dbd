"""The API's reads and its few direct writes, on the same tables as the runtime.

Every list goes through a key or an index and reads only its page (plus the
keys before an ``offset``): the DAG list through ``dags.by_tenant``, versions
through ``dag-versions.by_number``, runs through ``dag-runs.by_dag`` and then
one BatchGetItem of the page, a run's task instances by their keys, which the
spec and the run's map counts determine without reading anything else.
Totals are COUNT queries on the same key: one call per megabyte of keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState
from chalicelib.store.base import DagRecord, StoreError
from chalicelib.store.dynamo_view import _instance_from_item, _run_from_item
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import (
    DEFAULT_TENANT,
    DUE_SHARD,
    MAP_COUNT_KEY,
    POOL_KIND,
    RUN_COUNTER,
    instance_pk,
    instance_sk,
)
from chalicelib.store.writes import CONDITION_FAILED, new_token

BATCH_GET_LIMIT = 100
VERSION_ROW_ATTRIBUTES = ("dag_id", "ver", "vnum", "created_at", "git_commit", "bundle_key")


@dataclass(frozen=True)
class Page:
    """One page of a list and how many entries the whole list has."""

    items: list[Any]
    total: int


@dataclass(frozen=True)
class VersionRow:
    """A DAG version without its spec: what version lists show."""

    dag_id: str
    version: str
    number: int
    created_at: dt.datetime
    git_commit: str | None
    bundle_key: str | None


@dataclass(frozen=True)
class StoredRun:
    """A run with its map counts, which say how many instances its mapped tasks have."""

    run: DagRun
    maps: dict[str, dict[str, int]]


@dataclass(frozen=True)
class PoolRow:
    name: str
    slots: int
    used: int
    description: str | None


class Conflict(StoreError):
    """The thing to create exists already."""


class Missing(StoreError):
    """The thing to change does not exist."""


def tenant_of(record: DagRecord) -> str:
    return record.tenant or DEFAULT_TENANT


def _paged(items: Iterable[Any], offset: int, limit: int) -> list[Any]:
    page: list[Any] = []
    for index, item in enumerate(items):
        if index >= offset + limit:
            break
        if index >= offset:
            page.append(item)
    return page


class Catalog:
    def __init__(self, store: DynamoStateStore):
        self.store = store
        self.models = store.models

    # ------------------------------------------------------------ DAGs

    def list_dags(
        self,
        tenant: str,
        *,
        limit: int,
        offset: int,
        keep: Callable[[DagRecord], bool] | None = None,
        active_only: bool = False,
        descending: bool = False,
    ) -> Page:
        """One tenant's DAGs by id; ``keep`` filters (pattern, tags, paused) as they
        stream. Without ``keep`` only the page is read and the total is a COUNT."""
        model = self.models.dag
        active = model.active == True if active_only else None  # noqa: E712 (a condition)
        forward = not descending
        if keep is None:
            items = model.by_tenant.query(
                tenant, filter_condition=active, scan_index_forward=forward, limit=offset + limit
            )
            shown = [self.store._dag_record(item) for item in _paged(items, offset, limit)]
            return Page(shown, model.by_tenant.count(tenant, filter_condition=active))
        items = model.by_tenant.query(tenant, filter_condition=active, scan_index_forward=forward)
        matching = (r for r in map(self.store._dag_record, items) if keep(r))
        page: list[DagRecord] = []
        total = 0
        for record in matching:
            if offset <= total < offset + limit:
                page.append(record)
            total += 1
        return Page(page, total)

    def dag_records(self, dag_ids: Iterable[str]) -> dict[str, DagRecord]:
        """Several DAG rows in one batch read (the DAGs a page of runs belongs to)."""
        wanted = list(dict.fromkeys(dag_ids))
        found: dict[str, DagRecord] = {}
        for chunk in _chunks(iter(wanted), BATCH_GET_LIMIT):
            for item in self.models.dag.batch_get(chunk):
                found[item.dag_id] = self.store._dag_record(item)
        return found

    def set_paused(self, dag_id: str, paused: bool) -> DagRecord | None:
        """Pause or unpause one DAG; an unpaused DAG with a due time is due again."""
        model = self.models.dag
        record = self.store.get_dag(dag_id)
        if record is None:
            return None
        due = record.active and not paused and record.next_due_at is not None
        shard = model.due_shard.set(DUE_SHARD) if due else model.due_shard.remove()
        try:
            model(dag_id).update(
                actions=[model.paused.set(paused), shard], condition=model.dag_id.exists()
            )
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return None
            raise StoreError(f"cannot pause {dag_id}") from exc
        return dataclasses.replace(record, paused=paused)

    def delete_dag(self, dag_id: str) -> bool:
        """Forget a DAG: its row goes, so it is neither listed nor scheduled. Its
        versions and runs stay in their tables (they are immutable history)."""
        model = self.models.dag
        try:
            model(dag_id).delete(condition=model.dag_id.exists())
        except DeleteError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot delete {dag_id}") from exc
        return True

    # ------------------------------------------------------- versions

    def versions(self, dag_id: str, *, limit: int, offset: int, descending: bool) -> Page:
        index = self.models.dag_version.by_number
        rows = index.query(dag_id, scan_index_forward=not descending)
        total = index.count(dag_id)
        return Page([_version_row(i) for i in _paged(rows, offset, limit)], total)

    def version_by_number(self, dag_id: str, number: int) -> VersionRow | None:
        model = self.models.dag_version
        found = list(model.by_number.query(dag_id, model.vnum == number, limit=1))
        return _version_row(found[0]) if found else None

    def version_row(self, dag_id: str, version: str) -> VersionRow | None:
        model = self.models.dag_version
        try:
            item = model.get(
                dag_id,
                version,
                attributes_to_get=[
                    "dag_id",
                    "ver",
                    "vnum",
                    "created_at",
                    "git_commit",
                    "bundle_key",
                ],
            )
        except DoesNotExist:
            return None
        return _version_row(item)

    def latest_version(self, dag_id: str) -> VersionRow | None:
        index = self.models.dag_version.by_number
        found = list(index.query(dag_id, scan_index_forward=False, limit=1))
        return _version_row(found[0]) if found else None

    # ------------------------------------------------------------ runs

    def get_run(self, dag_id: str, run_id: str) -> StoredRun | None:
        item = self.store._run_item(dag_id, run_id)
        return None if item is None else _stored_run(item)

    def list_runs(
        self,
        dag_id: str | None,
        *,
        limit: int,
        offset: int,
        descending: bool,
        after_from: dt.datetime | None = None,
        after_to: dt.datetime | None = None,
        keep: Callable[[Any], bool] | None = None,
        tenant: str | None = None,
    ) -> Page:
        """Runs of one DAG (``by_dag``), or of every DAG of ``tenant`` when
        ``dag_id`` is None (``by_tenant``), by run_after, read from the index
        itself: it projects what a list shows (``RUN_LISTED``), so a page is one
        Query. ``keep`` (state, type, date filters) reads on past the page to
        count what matches; an unfiltered list reads only the page."""
        index, key, condition = self._runs_index(dag_id, tenant, after_from, after_to)
        ascending = not descending
        if keep is None:
            items = index.query(key, condition, scan_index_forward=ascending, limit=offset + limit)
            page = [_stored_run(item) for item in _paged(items, offset, limit)]
            if dag_id is not None and condition is None:
                total = self.store.run_count(dag_id)  # one GetItem, however many runs
            else:
                total = index.count(key, condition)
            return Page(page, total)
        matched = 0
        page = []
        for item in index.query(key, condition, scan_index_forward=ascending):
            if not keep(item):
                continue
            if offset <= matched < offset + limit:
                page.append(_stored_run(item))
            matched += 1
        return Page(page, matched)

    def latest_runs(self, dag_id: str, limit: int) -> list[StoredRun]:
        """A DAG's newest ``limit`` runs by run_after: one Query of ``by_dag``, no count."""
        items = self.models.dag_run.by_dag.query(dag_id, scan_index_forward=False, limit=limit)
        return [_stored_run(item) for item in items]

    def stream_runs(
        self, dag_id: str | None, *, tenant: str | None, descending: bool = True
    ) -> Iterator[StoredRun]:
        """Runs one batch read at a time, for lists that page over what runs hold."""
        index, key, condition = self._runs_index(dag_id, tenant, None, None)
        keys = index.query(key, condition, scan_index_forward=not descending)
        for chunk in _chunks(keys, BATCH_GET_LIMIT):
            for item in self._batch_runs([(k.dag_id, k.run_id) for k in chunk]):
                yield _stored_run(item)

    def _runs_index(
        self,
        dag_id: str | None,
        tenant: str | None,
        after_from: dt.datetime | None,
        after_to: dt.datetime | None,
    ) -> tuple[Any, str, Condition | None]:
        model = self.models.dag_run
        condition: Condition | None = None
        if after_from is not None and after_to is not None:
            condition = model.run_after.between(after_from, after_to)
        elif after_from is not None:
            condition = model.run_after >= after_from
        elif after_to is not None:
            condition = model.run_after <= after_to
        if dag_id is not None:
            return model.by_dag, dag_id, condition
        if tenant is None:
            raise ValueError("listing runs needs a dag_id or a tenant")
        return model.by_tenant, tenant, condition

    def _batch_runs(self, keys: list[tuple[str, str]]) -> list[Any]:
        """Items in the order of ``keys`` (BatchGetItem answers in any order)."""
        if not keys:
            return []
        found = {(i.dag_id, i.run_id): i for i in self.models.dag_run.batch_get(keys)}
        return [found[k] for k in keys if k in found]

    def set_run_note(self, dag_id: str, run_id: str, note: str | None) -> bool:
        model = self.models.dag_run
        action = model.note.set(note) if note is not None else model.note.remove()
        try:
            model(dag_id, run_id).update(actions=[action], condition=model.run_id.exists())
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot annotate run {run_id}") from exc
        return True

    def delete_run(self, dag_id: str, run_id: str) -> bool:
        """Delete a finished run's row and its instances (a live run is refused by the caller)."""
        model = self.models.dag_run
        ti = self.models.task_instance
        keys = [
            (i.pk, i.sk)
            for i in ti.query(instance_pk(dag_id, run_id), attributes_to_get=["pk", "sk"])
        ]
        with ti.batch_write() as batch:
            for pk, sk in keys:
                batch.delete(ti(pk, sk))
        finished = model.st.is_in(DagRunState.SUCCESS.value, DagRunState.FAILED.value)
        try:
            # A retry of an applied but unanswered delete is a no-op (the token),
            # so the counter moves once; a second delete call finds no run.
            with TransactWrite(
                connection=self.store._connection, client_request_token=new_token()
            ) as transaction:
                transaction.delete(model(dag_id, run_id), condition=finished)
                transaction.update(model(dag_id, RUN_COUNTER), actions=[model.n.add(-1)])
        except TransactWriteError as exc:
            codes = [r.code if r else None for r in exc.cancellation_reasons]
            if "ConditionalCheckFailed" in codes:
                return False
            raise StoreError(f"cannot delete run {run_id}") from exc
        return True

    # ------------------------------------------------------- instances

    def instance_keys(self, spec: DagSpec, run: StoredRun) -> list[tuple[str, int]]:
        """Every task instance of a run in (task_id, map_index) order, from the
        spec and the run's map counts: an unexpanded mapped task is one instance
        at -1, an expanded one its indices (Airflow lists those, not the -1)."""
        keys: list[tuple[str, int]] = []
        for task_id in sorted(spec.tasks):
            count = run.maps.get(task_id, {}).get(MAP_COUNT_KEY)
            if spec.tasks[task_id].mapping is None or count is None:
                keys.append((task_id, -1))
            else:
                keys.extend((task_id, i) for i in range(int(count)))
        return keys

    def instances(
        self, dag_id: str, run_id: str, keys: list[tuple[str, int]]
    ) -> dict[tuple[str, int], TaskInstance]:
        """The stored records among ``keys`` (at most a page); missing ones are state NONE."""
        model = self.models.task_instance
        pk = instance_pk(dag_id, run_id)
        found: dict[tuple[str, int], TaskInstance] = {}
        for chunk in _chunks(iter(keys), BATCH_GET_LIMIT):
            wanted = [(pk, instance_sk(t, i)) for t, i in chunk]
            for item in model.batch_get(wanted):
                ti = _instance_from_item(item)
                found[ti.key] = ti
        return found

    def all_instances(self, dag_id: str, run_id: str) -> dict[tuple[str, int], TaskInstance]:
        """Every stored record of one run (a state filter needs them all): one Query."""
        model = self.models.task_instance
        return {
            ti.key: ti
            for ti in (_instance_from_item(i) for i in model.query(instance_pk(dag_id, run_id)))
        }

    # ------------------------------------------------------------ pools

    def pools(self, *, limit: int, offset: int) -> Page:
        index = self.models.pool.configured
        rows = [_pool_row(i) for i in _paged(index.query(POOL_KIND), offset, limit)]
        return Page(rows, index.count(POOL_KIND))

    def pool(self, name: str) -> PoolRow | None:
        try:
            item = self.models.pool.get(f"pool:{name}", consistent_read=True)
        except DoesNotExist:
            return None
        return _pool_row(item) if item.kind == POOL_KIND else None

    def put_pool(self, name: str, slots: int, description: str | None, *, create: bool) -> PoolRow:
        model = self.models.pool
        condition = model.kind.does_not_exist() if create else model.kind.exists()
        actions = [model.slots.set(slots), model.kind.set(POOL_KIND)]
        actions.append(model.desc.set(description) if description else model.desc.remove())
        try:
            model(f"pool:{name}").update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                raise (Conflict if create else Missing)(f"pool {name!r}") from None
            raise StoreError(f"cannot write pool {name}") from exc
        row = self.pool(name)
        assert row is not None
        return row

    def delete_pool(self, name: str) -> bool:
        """Unconfigure a pool: its slot counter stays (running tries still give slots back)."""
        model = self.models.pool
        try:
            model(f"pool:{name}").update(
                actions=[model.kind.remove(), model.slots.remove(), model.desc.remove()],
                condition=model.kind.exists(),
            )
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot delete pool {name}") from exc
        return True


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _version_row(item: Any) -> VersionRow:
    return VersionRow(
        dag_id=item.dag_id,
        version=item.ver,
        number=int(item.vnum or 0),
        created_at=item.created_at,
        git_commit=item.git_commit,
        bundle_key=item.bundle_key,
    )


def _stored_run(item: Any) -> StoredRun:
    raw = item.maps.as_dict() if hasattr(item.maps, "as_dict") else dict(item.maps or {})
    maps = {task: {k: int(v) for k, v in dict(entry).items()} for task, entry in raw.items()}
    return StoredRun(_run_from_item(item), maps)


def _pool_row(item: Any) -> PoolRow:
    return PoolRow(
        name=item.name.removeprefix("pool:"),
        slots=int(item.slots if item.slots is not None else -1),
        used=int(item.used or 0),
        description=item.desc,
    )
