"""Guarded writes that stay exactly-once when DynamoDB's answer is lost.

An answer can be lost after DynamoDB applied a write (an HTTP 500, a dropped
connection): botocore then sends the very same request again, and that retry
meets the state its own first attempt left behind:

    attempt 1: "queued->running if st=queued"   applied ── answer lost (500)
    attempt 2: the same request                 condition fails: st=running

Read naively, the second answer says "someone else won" and the try is lost;
an unconditional ADD retried the same way counts twice. So every write here
carries a token, unique per logical write and the same on every retry of it:

- a single-item conditional update also sets ``wt = token`` and asks for the
  item as it was when the condition failed (ALL_OLD, no second read): if that
  item carries our token, the failed retry found our own write, which won;
- a transaction sends the token as its ``ClientRequestToken``: DynamoDB runs
  a repeat of a successful request with the same token (within 10 minutes)
  as a no-op success, so counter ADDs and slot moves inside it apply once.

A deferred counter move is settled by ``store.settles`` (one UpdateItem and
the run item's settle log), so even a caller's own repeat of it is a no-op.
Items without a ``wt`` attribute keep the plain condition.
"""

from __future__ import annotations

import uuid
from typing import Any

from pynamodb.connection import Connection
from pynamodb.constants import ALL_NEW, ATTRIBUTES, UPDATE_ITEM
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core.progress import RunProgress
from chalicelib.core.slots import decode_held
from chalicelib.core.states import TaskState
from chalicelib.store.base import StoreError
from chalicelib.store.changes import ExpansionWrite, InstanceWrite
from chalicelib.store.models import (
    MAP_COUNT_KEY,
    MAP_WINDOW_KEY,
    RUNNING_LEASE,
    WRITE_TOKEN,
    StoreModels,
    instance_pk,
    instance_sk,
)

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"
TRANSACTION_CONFLICT_RETRIES = 8

Op = tuple[Model, list[Action], Condition | None]

# TaskInstance field -> item attribute
_FIELD_ATTRS = {
    "try_number": "try_n",
    "queued_at": "queued",
    "start_date": "start",
    "end_date": "end",
    "next_try_at": "next_try",
    "error": "err",
    "result_length": "rlen",
    "rendered_map_index": "rmi",
    "rendered_fields": "rf",
    "wait_key": "wq",
    "wait_rank": "wp",
    "retry_base": "rb",
    "infra_failures": "inf",
    "first_poke_at": "poke0",
    "external_executor_id": "xid",
}


def new_token() -> str:
    """A token for one logical write (every retry of it reuses the value)."""
    return uuid.uuid4().hex


class GuardedWriter:
    """Applies ``Op`` lists: one item as a conditional update, more as a transaction."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def guarded(self, ops: list[Op], token: str | None = None) -> bool:
        """Run ``ops`` atomically; False when the first op's condition failed
        (and the item does not show that our own earlier attempt applied it).

        ``token`` names this logical write; None makes a fresh one, "" writes
        none (a write that is idempotent by itself, such as a heartbeat)."""
        token = new_token() if token is None else token
        if len(ops) == 1:
            return self._update_one(ops[0], token)
        return self.transact(ops, token, describe=describe(ops[0][0]))

    def transact(self, ops: list[Op], token: str, *, describe: str) -> bool:
        """One TransactWriteItems of updates, retried on conflicts with the same token."""
        for _ in range(TRANSACTION_CONFLICT_RETRIES):
            try:
                with TransactWrite(
                    connection=self._connection, client_request_token=token or None
                ) as transaction:
                    for item, actions, condition in ops:
                        transaction.update(item, actions=actions, condition=condition)
            except TransactWriteError as exc:
                verdict = conflict_verdict(exc, describe)
                if verdict is None:
                    continue  # a concurrent transaction touched one of the items
                return verdict
            return True
        raise StoreError(f"transaction on {describe} kept conflicting")

    def _update_one(self, op: Op, token: str) -> bool:
        item, actions, condition = op
        model = type(item)
        tokened = bool(token) and WRITE_TOKEN in model.get_attributes()
        if tokened:
            actions = [*actions, getattr(model, WRITE_TOKEN).set(token)]
        table, kwargs = update_request(item, actions, condition, old_on_failure=tokened)
        try:
            data = table.connection.dispatch(UPDATE_ITEM, kwargs)
        except Exception as exc:  # botocore's error, raised by dispatch as is
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code != CONDITION_FAILED:
                # botocore gave up (throttled, 5xx, unreachable) and the write may
                # or may not have landed: the item says which, if we can read it.
                if tokened and self._landed(item, token):
                    return True
                raise StoreError(f"update of {describe(item)} failed") from exc
            if not tokened:
                return False
            found = _item_as_it_was(exc, item)
            if found is not None and found.get(WRITE_TOKEN, {}).get("S") == token:
                item.deserialize(found)  # our earlier attempt's write: it won
                return True
            return False
        item.deserialize(data[ATTRIBUTES])  # the ALL_NEW answer, as pynamodb's update gives
        return True

    @staticmethod
    def _landed(item: Model, token: str) -> bool:
        """After an error that leaves a write's outcome unknown: did it land?"""
        try:
            found = _read(item)
        except Exception:
            return False  # still unknown: the caller sees the original error
        if found is None or found.get(WRITE_TOKEN, {}).get("S") != token:
            return False
        item.deserialize(found)
        return True


def update_request(
    item: Model, actions: list[Action], condition: Condition | None, *, old_on_failure: bool
) -> tuple[Any, dict[str, Any]]:
    """The item's table connection and an UpdateItem request answering ALL_NEW
    (and, with ``old_on_failure``, the item as it was when the condition failed)."""
    table = item._get_connection()
    hash_key, range_key = item._get_hash_range_key_serialized_values()
    kwargs = table.connection.get_operation_kwargs(
        table.table_name,
        hash_key,
        range_key=range_key,
        actions=actions,
        condition=condition,
        return_values=ALL_NEW,
        return_values_on_condition_failure="ALL_OLD" if old_on_failure else None,
    )
    return table, kwargs


def _item_as_it_was(exc: BaseException, item: Model) -> dict[str, Any] | None:
    """The item that failed the condition: DynamoDB's ALL_OLD answer, which
    pynamodb's error drops but the botocore error it replaced keeps; a
    consistent read if neither has it."""
    for error in (exc, exc.__context__):
        found = getattr(error, "response", {}).get("Item")
        if found is not None:
            return dict(found)
    return _read(item)


def _read(item: Model) -> dict[str, Any] | None:
    """The stored item, raw, by a consistent read."""
    table = item._get_connection()
    hash_key, range_key = item._get_hash_range_key_serialized_values()
    data = table.get_item(hash_key, range_key=range_key, consistent_read=True)
    found = data.get("Item")
    return None if found is None else dict(found)


def conflict_verdict(exc: TransactWriteError, what: str) -> bool | None:
    """False for a failed condition, None for a conflict worth retrying; raises otherwise."""
    codes = [r.code if r else None for r in exc.cancellation_reasons]
    if exc.cause_response_code == TRANSACTION_CANCELED:
        if "ConditionalCheckFailed" in codes:
            return False
        if "TransactionConflict" in codes:
            return None
        raise StoreError(f"transaction on {what} cancelled: {codes}") from exc
    raise StoreError(f"transaction on {what} failed") from exc


def write_ops(
    models: StoreModels, dag_id: str, run_id: str, write: InstanceWrite | ExpansionWrite
) -> list[Op]:
    """The item updates one write needs: the guarded one first, then the pool
    releases, then the run item's (its counters and, for a mapped task, the
    map's entry; for a task wide joins count, their ``fanin`` entries)."""
    ti = models.task_instance
    run = models.dag_run
    pk = instance_pk(dag_id, run_id)
    ops: list[Op] = []
    run_actions = counter_actions(run, write.progress)
    if isinstance(write, ExpansionWrite):
        condition = ti.mcount.does_not_exist() & (
            ti.st.does_not_exist() | (ti.st == TaskState.NONE.value)
        )
        actions = [ti.mcount.set(write.count)]
        entry = {MAP_COUNT_KEY: write.count}
        if write.window is not None:
            actions.append(ti.mwin.set(write.window))
            entry[MAP_WINDOW_KEY] = write.window
        ops.append((ti(pk, instance_sk(write.task_id, -1)), actions, condition))
        run_actions.append(run.maps[write.task_id].set(entry))
    else:
        ops.append(
            (
                ti(pk, instance_sk(write.task_id, write.map_index)),
                instance_actions(ti, write),
                instance_condition(ti, write),
            )
        )
        pool = models.pool
        for entry in write.releases:
            key, amount = decode_held(entry)
            ops.append((pool(key), [pool.used.add(-amount)], None))
        old_tally, new_tally = write.tally_moves
        for state, step in ((old_tally, -1), (new_tally, 1)):
            if state is not None:
                path = run.maps[write.task_id][state.value]
                run_actions.append(path.set((path | 0) + step))
        for join, state, step in write.fan_in_moves:
            path = run.fanin[join][state.value]
            run_actions.append(path.set((path | 0) + step))
    if run_actions:
        ops.append((run(dag_id, run_id), run_actions, None))
    return ops


def instance_condition(model: Any, write: InstanceWrite) -> Condition:
    same_try = model.try_n == write.expected_try
    if write.expected is TaskState.NONE:
        # No record yet means NONE with no try; expansion leaves st unset too.
        never_tried = model.st.does_not_exist()
        if write.expected_try != 0:
            never_tried = model.st.does_not_exist() & same_try
        return never_tried | ((model.st == TaskState.NONE.value) & same_try)
    return (model.st == write.expected.value) & same_try


def instance_actions(model: Any, write: InstanceWrite) -> list[Action]:
    actions: list[Action] = [model.st.set(write.new.value)]
    fields = dict(write.fields)
    fields.setdefault("try_number", write.expected_try)
    for name, value in fields.items():
        if name == "slots":
            actions.append(model.slt.set(list(value)) if value else model.slt.remove())
            continue
        if name == "skip_downstream":
            if value is None:
                actions += [model.skip.remove(), model.skip_set.remove()]
            else:
                actions += [model.skip.set(list(value)), model.skip_set.set(True)]
            continue
        attr = getattr(model, _FIELD_ATTRS[name])
        actions.append(attr.remove() if value is None else attr.set(value))
    if write.heartbeat is not None:
        actions += [model.lease.set(RUNNING_LEASE), model.hb.set(write.heartbeat)]
    else:
        actions += [model.lease.remove(), model.hb.remove()]  # leaves the sparse index
    return actions


def counter_actions(model: Any, delta: RunProgress) -> list[Action]:
    actions: list[Action] = []
    if delta.total:
        actions.append(model.total.add(delta.total))
    if delta.finished:
        actions.append(model.done.add(delta.finished))
    if delta.failed_leaves:
        actions.append(model.failed.add(delta.failed_leaves))
    return actions


def describe(item: Model) -> str:
    return f"{type(item).Meta.table_name} {item._get_keys()}"
