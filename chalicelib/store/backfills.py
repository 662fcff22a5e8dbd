"""Backfills' own state: what each asked for, its planned dates and how far it got.

A backfill is one item; its runs are ordinary runs (``run_type`` backfill,
``backfill_id`` on the run). ``cursor`` counts the planned dates whose runs
exist, and moves only by a conditional write from the value its writer read,
so two schedulers advancing the same backfill never both count a date. A DAG
has at most one backfill not completed, which a guard item enforces in the
same transaction that creates or completes the backfill (Airflow refuses a
second active backfill too).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.core.backfill import ReprocessBehavior, is_backfill_run
from chalicelib.core.runs import DagRun
from chalicelib.core.states import DagRunState
from chalicelib.store.base import StoreError
from chalicelib.store.models import ACTIVE_BACKFILL, StoreModels

CONDITION_FAILED = "ConditionalCheckFailedException"
COUNTER_KEY = "counter"


class ActiveBackfillExists(StoreError):
    """The DAG has a backfill that is not completed yet."""


@dataclass(frozen=True)
class Backfill:
    dag_id: str
    from_date: dt.datetime
    to_date: dt.datetime
    reprocess_behavior: ReprocessBehavior
    max_active_runs: int
    created_at: dt.datetime
    updated_at: dt.datetime
    dates: tuple[dt.datetime, ...] = ()
    dag_run_conf: dict[str, Any] = field(default_factory=dict)
    is_paused: bool = False
    completed_at: dt.datetime | None = None
    cursor: int = 0
    dag_display_name: str = ""
    id: int = 0  # given by the store when created

    @property
    def pending(self) -> tuple[dt.datetime, ...]:
        return self.dates[self.cursor :]


class BackfillStore(abc.ABC):
    """The backfills table behind the same two adapters as the state store."""

    @abc.abstractmethod
    def create(self, backfill: Backfill) -> Backfill:
        """Store a new backfill under the next id; ActiveBackfillExists if the DAG has one."""

    @abc.abstractmethod
    def get(self, backfill_id: int) -> Backfill | None: ...

    @abc.abstractmethod
    def list_for_dag(
        self, dag_id: str, *, limit: int, offset: int, descending: bool = False
    ) -> tuple[list[Backfill], int]:
        """One page of a DAG's backfills by id, and how many it has."""

    @abc.abstractmethod
    def active_ids(self) -> list[int]:
        """Ids of backfills not completed (a sparse index: no scan)."""

    @abc.abstractmethod
    def advance_cursor(self, backfill_id: int, expected: int, now: dt.datetime) -> bool:
        """cursor ``expected`` -> ``expected + 1``; False when someone moved it first."""

    @abc.abstractmethod
    def set_paused(self, backfill_id: int, paused: bool, now: dt.datetime) -> bool:
        """Pause or unpause a backfill not completed; False when it is completed or missing."""

    @abc.abstractmethod
    def complete(self, backfill: Backfill, now: dt.datetime, *, pause: bool = False) -> bool:
        """Set completed_at once (and free the DAG for another backfill); False if done."""

    @abc.abstractmethod
    def runs_between(self, dag_id: str, start: dt.datetime, end: dt.datetime) -> list[DagRun]:
        """A DAG's runs whose run_after is in [start, end] (through the by_dag index)."""

    @abc.abstractmethod
    def fail_queued_run(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        """QUEUED -> FAILED (a cancelled backfill's runs that never started)."""

    @abc.abstractmethod
    def adopt_run(self, dag_id: str, run_id: str, backfill_id: int) -> bool:
        """A run becomes a later backfill's (reprocessing its date), so the end of
        its rerun moves that backfill on; False when it is that backfill's already."""


class InMemoryBackfillStore(BackfillStore):
    """Reads and writes the in-memory state store's runs under its lock."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self._lock: threading.RLock = state._lock
        self._items: dict[int, Backfill] = {}
        self._active_by_dag: dict[str, int] = {}

    def create(self, backfill: Backfill) -> Backfill:
        with self._lock:
            if backfill.dag_id in self._active_by_dag:
                raise ActiveBackfillExists(backfill.dag_id)
            created = dataclasses.replace(backfill, id=len(self._items) + 1)
            self._items[created.id] = created
            self._active_by_dag[created.dag_id] = created.id
            return created

    def get(self, backfill_id: int) -> Backfill | None:
        with self._lock:
            return self._items.get(backfill_id)

    def list_for_dag(
        self, dag_id: str, *, limit: int, offset: int, descending: bool = False
    ) -> tuple[list[Backfill], int]:
        with self._lock:
            rows = sorted(
                (b for b in self._items.values() if b.dag_id == dag_id),
                key=lambda b: b.id,
                reverse=descending,
            )
        return rows[offset : offset + limit], len(rows)

    def active_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._active_by_dag.values())

    def _change(self, backfill_id: int, ok: Any, **changes: Any) -> bool:
        with self._lock:
            current = self._items.get(backfill_id)
            if current is None or current.completed_at is not None or not ok(current):
                return False
            self._items[backfill_id] = dataclasses.replace(current, **changes)
            return True

    def advance_cursor(self, backfill_id: int, expected: int, now: dt.datetime) -> bool:
        return self._change(
            backfill_id, lambda b: b.cursor == expected, cursor=expected + 1, updated_at=now
        )

    def set_paused(self, backfill_id: int, paused: bool, now: dt.datetime) -> bool:
        return self._change(backfill_id, lambda b: True, is_paused=paused, updated_at=now)

    def complete(self, backfill: Backfill, now: dt.datetime, *, pause: bool = False) -> bool:
        with self._lock:
            current = self._items.get(backfill.id)
            paused = pause or (current is not None and current.is_paused)
            if not self._change(
                backfill.id, lambda b: True, completed_at=now, updated_at=now, is_paused=paused
            ):
                return False
            if self._active_by_dag.get(backfill.dag_id) == backfill.id:
                del self._active_by_dag[backfill.dag_id]
            return True

    def runs_between(self, dag_id: str, start: dt.datetime, end: dt.datetime) -> list[DagRun]:
        with self._lock:
            return [
                r.run
                for (d, _), r in self._state._runs.items()
                if d == dag_id and start <= r.run.run_after <= end
            ]

    def fail_queued_run(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        with self._lock:
            record = self._state._runs.get((dag_id, run_id))
            if record is None or record.run.state is not DagRunState.QUEUED:
                return False
            record.run = record.run.with_state(DagRunState.FAILED, end_date=now)
            return True

    def adopt_run(self, dag_id: str, run_id: str, backfill_id: int) -> bool:
        with self._lock:
            record = self._state._runs.get((dag_id, run_id))
            if record is None or record.run.backfill_id == backfill_id:
                return False
            record.run = dataclasses.replace(record.run, backfill_id=backfill_id)
            return True


class DynamoBackfillStore(BackfillStore):
    def __init__(self, models: StoreModels, connection: Connection, state: Any) -> None:
        self.model = models.backfill
        self.runs = models.dag_run
        self._connection = connection
        self._state = state  # the DynamoStateStore: its run reads

    def create(self, backfill: Backfill) -> Backfill:
        model = self.model
        try:  # the usual refusal, before an id is spent (the transaction still decides)
            model.get(f"dag#{backfill.dag_id}", consistent_read=True)
            raise ActiveBackfillExists(backfill.dag_id)
        except DoesNotExist:
            pass
        counter = model(COUNTER_KEY)
        counter.update(actions=[model.n.add(1)])  # ids may skip (a refused create), never repeat
        created = dataclasses.replace(backfill, id=int(counter.n))
        item = _item(model, created)
        guard = model(f"dag#{created.dag_id}", bid=created.id)
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(guard, condition=model.pk.does_not_exist())
                transaction.save(item, condition=model.pk.does_not_exist())
        except TransactWriteError as exc:
            codes = [r.code if r else None for r in exc.cancellation_reasons]
            if "ConditionalCheckFailed" in codes:
                raise ActiveBackfillExists(created.dag_id) from None
            raise StoreError(f"cannot create a backfill of {created.dag_id}") from exc
        return created

    def get(self, backfill_id: int) -> Backfill | None:
        try:
            item = self.model.get(f"bf#{backfill_id}", consistent_read=True)
        except DoesNotExist:
            return None
        return _backfill(item)

    def list_for_dag(
        self, dag_id: str, *, limit: int, offset: int, descending: bool = False
    ) -> tuple[list[Backfill], int]:
        index = self.model.by_dag
        page: list[Backfill] = []
        for position, item in enumerate(index.query(dag_id, scan_index_forward=not descending)):
            if position >= offset + limit:
                break
            if position >= offset:
                page.append(_backfill(item))
        return page, index.count(dag_id)

    def active_ids(self) -> list[int]:
        return [int(i.id) for i in self.model.active.query(ACTIVE_BACKFILL)]

    def _update(self, backfill_id: int, actions: list[Any], condition: Any) -> bool:
        model = self.model
        try:
            model(f"bf#{backfill_id}").update(
                actions=actions, condition=condition & model.completed.does_not_exist()
            )
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot update backfill {backfill_id}") from exc
        return True

    def advance_cursor(self, backfill_id: int, expected: int, now: dt.datetime) -> bool:
        model = self.model
        return self._update(
            backfill_id,
            [model.cursor.set(expected + 1), model.updated.set(now)],
            model.cursor == expected,
        )

    def set_paused(self, backfill_id: int, paused: bool, now: dt.datetime) -> bool:
        model = self.model
        return self._update(
            backfill_id, [model.paused.set(paused), model.updated.set(now)], model.pk.exists()
        )

    def complete(self, backfill: Backfill, now: dt.datetime, *, pause: bool = False) -> bool:
        model = self.model
        actions = [model.completed.set(now), model.updated.set(now), model.act.remove()]
        if pause:
            actions.append(model.paused.set(True))
        guard = model(f"dag#{backfill.dag_id}")
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.update(
                    model(f"bf#{backfill.id}"),
                    actions=actions,
                    condition=model.pk.exists() & model.completed.does_not_exist(),
                )
                transaction.delete(guard, condition=model.bid == backfill.id)
        except TransactWriteError as exc:
            codes = [r.code if r else None for r in exc.cancellation_reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if "ConditionalCheckFailed" in codes:
                # the guard is gone or another's: complete this one alone
                return self._update(backfill.id, actions, model.pk.exists())
            raise StoreError(f"cannot complete backfill {backfill.id}") from exc
        return True

    def runs_between(self, dag_id: str, start: dt.datetime, end: dt.datetime) -> list[DagRun]:
        from chalicelib.store.dynamo_view import _run_from_item

        keys = [
            (k.dag_id, k.run_id)
            for k in self.runs.by_dag.query(dag_id, self.runs.run_after.between(start, end))
        ]
        found: list[DagRun] = []
        for i in range(0, len(keys), 100):
            found.extend(_run_from_item(item) for item in self.runs.batch_get(keys[i : i + 100]))
        return found

    def fail_queued_run(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        runs = self.runs
        try:
            runs(dag_id, run_id).update(
                actions=[runs.st.set(DagRunState.FAILED.value), runs.end.set(now)],
                condition=runs.st == DagRunState.QUEUED.value,
            )
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot fail run {run_id}") from exc
        return True

    def adopt_run(self, dag_id: str, run_id: str, backfill_id: int) -> bool:
        runs = self.runs
        someone_elses = runs.st.exists() & (runs.bf.does_not_exist() | (runs.bf != backfill_id))
        try:
            runs(dag_id, run_id).update(actions=[runs.bf.set(backfill_id)], condition=someone_elses)
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot adopt run {run_id}") from exc
        return True


def latest_states(runs: Sequence[DagRun]) -> dict[dt.datetime, DagRunState]:
    """Each logical date's latest run state (Airflow looks at the latest run of a date)."""
    latest: dict[dt.datetime, DagRun] = {}
    for run in sorted(runs, key=lambda r: (r.run_after, r.start_date or r.run_after)):
        if run.logical_date is not None:
            latest[run.logical_date] = run
    return {date: run.state for date, run in latest.items()}


def backfill_runs_of(active: Sequence[Any]) -> list[Any]:
    return [r for r in active if is_backfill_run(r.run_id)]


def _item(model: Any, b: Backfill) -> Any:
    return model(
        f"bf#{b.id}",
        id=b.id,
        dag_id=b.dag_id,
        from_d=b.from_date,
        to_d=b.to_date,
        conf=json.dumps(b.dag_run_conf, sort_keys=True),
        paused=b.is_paused,
        reproc=b.reprocess_behavior.value,
        mar=b.max_active_runs,
        created=b.created_at,
        updated=b.updated_at,
        completed=b.completed_at,
        dates=[d.isoformat() for d in b.dates],
        cursor=b.cursor,
        act=None if b.completed_at is not None else ACTIVE_BACKFILL,
        name=b.dag_display_name,
    )


def _backfill(item: Any) -> Backfill:
    return Backfill(
        id=int(item.id),
        dag_id=item.dag_id,
        from_date=item.from_d,
        to_date=item.to_d,
        reprocess_behavior=ReprocessBehavior(item.reproc),
        max_active_runs=int(item.mar),
        created_at=item.created,
        updated_at=item.updated,
        completed_at=item.completed,
        dates=tuple(dt.datetime.fromisoformat(d) for d in (item.dates or [])),
        dag_run_conf=json.loads(item.conf) if item.conf else {},
        is_paused=bool(item.paused),
        cursor=int(item.cursor or 0),
        dag_display_name=item.name or item.dag_id,
    )
