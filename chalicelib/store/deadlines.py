"""Deadline items: one per alert per run, found by time when they come due.

They live in the dags table under keys no DAG id can have (``dl#<dag>#<run>#<n>``;
DAG ids have no ``#``) and reuse its sparse ``due`` index under their own shard
(``deadline``), so the tick's one Query returns only deadlines that are due and
still need something: work per tick is proportional to the deadlines due, never
to the runs there are. Timeline of one item, each step a conditional write:

    register   put if absent                     state pending, in the index
    judge met  pending -> met                    leaves the index (never fires)
    judge miss pending -> missed, sent_at=now    stays in the index until claimed;
               (+ the event log row, same transaction)
    resend     missed, unclaimed, sent_at=old -> sent_at=now   (a lost invoke)
    claim      missed, unclaimed -> claimed      leaves the index; the worker that
                                                 wins runs the callback, once
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import random
import threading
from dataclasses import replace
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.attributes import UTCDateTimeAttribute as Utc
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core.deadlines import Deadline, DeadlineState
from chalicelib.store.models import DEFAULT_TENANT, StoreModels

CONDITION_FAILED = "ConditionalCheckFailedException"
CANCELLED = "TransactionCanceledException"
DEADLINE_SHARD = "deadline"
DUE_PAGE = 100
"""Due deadlines judged per tick at most; the rest wait for the next tick."""
MISSED_EVENT = "deadline_missed"


def deadline_key(dag_id: str, run_id: str, index: int) -> str:
    return f"dl#{dag_id}#{run_id}#{index}"


class DeadlineStore(abc.ABC):
    """The state of each run's deadlines (see the module docstring)."""

    @abc.abstractmethod
    def register(self, deadline: Deadline) -> bool:
        """Create the item once; False when it exists (a repeated RunCreated)."""

    @abc.abstractmethod
    def due(self, now: dt.datetime, limit: int = DUE_PAGE) -> list[Deadline]: ...

    @abc.abstractmethod
    def for_run(self, dag_id: str, run_id: str, count: int) -> list[Deadline]: ...

    @abc.abstractmethod
    def mark_met(self, deadline: Deadline) -> bool: ...

    @abc.abstractmethod
    def mark_missed(self, deadline: Deadline, now: dt.datetime, extra: dict[str, Any]) -> bool:
        """pending -> missed, recording the miss in the event log with it."""

    @abc.abstractmethod
    def mark_resent(self, deadline: Deadline, now: dt.datetime) -> bool: ...

    @abc.abstractmethod
    def claim_callback(self, dag_id: str, run_id: str, index: int) -> bool:
        """The one worker that wins this runs the callback."""


class InMemoryDeadlineStore(DeadlineStore):
    """For tests and ``dags test``; ``events`` stands in for the event log."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._items: dict[tuple[str, str, int], Deadline] = {}
        self.events: list[dict[str, Any]] = []

    def register(self, deadline: Deadline) -> bool:
        with self._lock:
            key = (deadline.dag_id, deadline.run_id, deadline.index)
            if key in self._items:
                return False
            self._items[key] = deadline
            return True

    def due(self, now: dt.datetime, limit: int = DUE_PAGE) -> list[Deadline]:
        with self._lock:
            found = [d for d in self._items.values() if d.deadline_time <= now and _indexed(d)]
        return sorted(found, key=lambda d: (d.deadline_time, d.dag_id, d.run_id, d.index))[:limit]

    def for_run(self, dag_id: str, run_id: str, count: int) -> list[Deadline]:
        with self._lock:
            return [
                self._items[(dag_id, run_id, i)]
                for i in range(count)
                if (dag_id, run_id, i) in self._items
            ]

    def _change(self, deadline: Deadline, ok: Any, **changes: Any) -> bool:
        with self._lock:
            key = (deadline.dag_id, deadline.run_id, deadline.index)
            current = self._items.get(key)
            if current is None or not ok(current):
                return False
            self._items[key] = replace(current, **changes)
            return True

    def mark_met(self, deadline: Deadline) -> bool:
        return self._change(
            deadline, lambda d: d.state is DeadlineState.PENDING, state=DeadlineState.MET
        )

    def mark_missed(self, deadline: Deadline, now: dt.datetime, extra: dict[str, Any]) -> bool:
        with self._lock:
            won = self._change(
                deadline,
                lambda d: d.state is DeadlineState.PENDING,
                state=DeadlineState.MISSED,
                missed_at=now,
                callback_sent_at=now,
            )
            if won:
                self.events.append({"event": MISSED_EVENT, "when": now, **extra})
            return won

    def mark_resent(self, deadline: Deadline, now: dt.datetime) -> bool:
        return self._change(
            deadline,
            lambda d: not d.callback_claimed and d.callback_sent_at == deadline.callback_sent_at,
            callback_sent_at=now,
        )

    def claim_callback(self, dag_id: str, run_id: str, index: int) -> bool:
        probe = Deadline(dag_id, run_id, index, dt.datetime.min.replace(tzinfo=dt.UTC))
        return self._change(
            probe,
            lambda d: d.state is DeadlineState.MISSED and not d.callback_claimed,
            callback_claimed=True,
        )


def _indexed(d: Deadline) -> bool:
    return d.state is DeadlineState.PENDING or (
        d.state is DeadlineState.MISSED and not d.callback_claimed
    )


def build_deadline_model(dag_model: type[Any]) -> type[Any]:
    """A model of the dags table for deadline items (same table, same ``due`` index)."""

    class DeadlineDueIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "due"
            projection = KeysOnlyProjection()

        due_shard = UnicodeAttribute(hash_key=True)
        due_at = Utc(range_key=True)

    class DeadlineItem(Model):
        class Meta:
            table_name = dag_model.Meta.table_name
            region = dag_model.Meta.region
            host = dag_model.Meta.host
            max_retry_attempts = dag_model.Meta.max_retry_attempts

        dag_id = UnicodeAttribute(hash_key=True)  # deadline_key(...)
        due_shard = UnicodeAttribute(null=True)  # DEADLINE_SHARD while indexed
        due_at = Utc(null=True)
        dl_dag = UnicodeAttribute()
        dl_run = UnicodeAttribute()
        dl_idx = NumberAttribute()
        dl_time = Utc()
        dl_st = UnicodeAttribute()
        missed_at = Utc(null=True)
        sent_at = Utc(null=True)
        claimed = BooleanAttribute(null=True)
        # not ``tn``: that is the key of the DAG table's by_tenant index (DAG lists)
        dl_tn = UnicodeAttribute(null=True)
        due = DeadlineDueIndex()

    return DeadlineItem


class DynamoDeadlineStore(DeadlineStore):
    def __init__(self, models: StoreModels, connection: Connection) -> None:
        self.model = build_deadline_model(models.dag)
        self.events = models.event_log
        self._connection = connection
        self._rng = random.SystemRandom()

    def register(self, deadline: Deadline) -> bool:
        m = self.model
        item = m(
            deadline_key(deadline.dag_id, deadline.run_id, deadline.index),
            due_shard=DEADLINE_SHARD,
            due_at=deadline.deadline_time,
            dl_dag=deadline.dag_id,
            dl_run=deadline.run_id,
            dl_idx=deadline.index,
            dl_time=deadline.deadline_time,
            dl_st=DeadlineState.PENDING.value,
            dl_tn=deadline.tenant,
        )
        try:
            item.save(condition=m.dag_id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise
        return True

    def due(self, now: dt.datetime, limit: int = DUE_PAGE) -> list[Deadline]:
        m = self.model
        keys = [i.dag_id for i in m.due.query(DEADLINE_SHARD, m.due_at <= now, limit=limit)]
        found = [_deadline(i) for i in m.batch_get(keys)] if keys else []
        return sorted(found, key=lambda d: (d.deadline_time, d.dag_id, d.run_id, d.index))

    def for_run(self, dag_id: str, run_id: str, count: int) -> list[Deadline]:
        if count <= 0:
            return []
        keys = [deadline_key(dag_id, run_id, i) for i in range(count)]
        return sorted((_deadline(i) for i in self.model.batch_get(keys)), key=lambda d: d.index)

    def _update(self, deadline: Deadline, actions: list[Any], condition: Any) -> bool:
        key = deadline_key(deadline.dag_id, deadline.run_id, deadline.index)
        try:
            self.model(key).update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise
        return True

    def mark_met(self, deadline: Deadline) -> bool:
        m = self.model
        return self._update(
            deadline,
            [m.dl_st.set(DeadlineState.MET.value), m.due_shard.remove()],
            m.dl_st == DeadlineState.PENDING.value,
        )

    def mark_missed(self, deadline: Deadline, now: dt.datetime, extra: dict[str, Any]) -> bool:
        m = self.model
        key = deadline_key(deadline.dag_id, deadline.run_id, deadline.index)
        for _ in range(5):
            # The event row is written in the same transaction, so a miss is
            # logged exactly when it is marked (a repeat finds it marked).
            event = self.events(
                deadline.tenant or DEFAULT_TENANT,
                int(now.timestamp() * 1_000_000) * 1000 + self._rng.randrange(1000),
                when=now,
                event=MISSED_EVENT,
                owner="scheduler",
                dag_id=deadline.dag_id,
                run_id=deadline.run_id,
                extra=json.dumps(extra, sort_keys=True, default=str),
            )
            try:
                with TransactWrite(connection=self._connection) as tx:
                    tx.update(
                        m(key),
                        actions=[
                            m.dl_st.set(DeadlineState.MISSED.value),
                            m.missed_at.set(now),
                            m.sent_at.set(now),
                        ],
                        condition=m.dl_st == DeadlineState.PENDING.value,
                    )
                    tx.save(event, condition=self.events.eid.does_not_exist())
            except TransactWriteError as exc:
                if exc.cause_response_code not in (CONDITION_FAILED, CANCELLED):
                    raise
                current = self.model.get(key, consistent_read=True)
                if current.dl_st != DeadlineState.PENDING.value:
                    return False  # judged already (another tick, or our own lost answer)
                continue  # the event id was taken: another id
            return True
        raise RuntimeError(f"could not record the missed deadline {key}")

    def mark_resent(self, deadline: Deadline, now: dt.datetime) -> bool:
        m = self.model
        return self._update(
            deadline,
            [m.sent_at.set(now)],
            m.claimed.does_not_exist() & (m.sent_at == deadline.callback_sent_at),
        )

    def claim_callback(self, dag_id: str, run_id: str, index: int) -> bool:
        m = self.model
        probe = Deadline(dag_id, run_id, index, dt.datetime.min.replace(tzinfo=dt.UTC))
        return self._update(
            probe,
            [m.claimed.set(True), m.due_shard.remove()],
            (m.dl_st == DeadlineState.MISSED.value) & m.claimed.does_not_exist(),
        )


def _deadline(item: Any) -> Deadline:
    return Deadline(
        dag_id=item.dl_dag,
        run_id=item.dl_run,
        index=int(item.dl_idx),
        deadline_time=item.dl_time,
        state=DeadlineState(item.dl_st),
        missed_at=item.missed_at,
        callback_sent_at=item.sent_at,
        callback_claimed=bool(item.claimed),
        tenant=item.dl_tn,
    )
