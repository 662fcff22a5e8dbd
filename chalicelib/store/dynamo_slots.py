"""Slots and liveness on DynamoDB: concurrency counters taken in the same
transaction as the instance change they belong to, pools, the queue of tries
waiting for a slot, and heartbeats of running tries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pynamodb.exceptions import DeleteError, DoesNotExist

from chalicelib.core.runs import TaskInstance
from chalicelib.core.slots import SlotClaim, pool_key
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.store.changes import InstanceWrite
from chalicelib.store.dynamo_base import DynamoStoreBase
from chalicelib.store.dynamo_view import _instance_from_item
from chalicelib.store.models import POOL_KIND, RUNNING_LEASE, instance_pk, instance_sk


class DynamoSlots(DynamoStoreBase):
    def _acquire(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        write: InstanceWrite,
        claims: tuple[SlotClaim, ...],
    ) -> bool:
        ops = self._ops(dag_id, run_id, write)
        pool = self.models.pool
        for claim in claims:
            room = pool.used.does_not_exist() | (pool.used <= claim.limit - claim.amount)
            ops.append((pool(claim.key), [pool.used.add(claim.amount)], room))
        return self._guarded(ops, write.token)

    def waiting(self, key: str, limit: int) -> list[tuple[str, TaskInstance]]:
        model = self.models.task_instance
        return [
            (item.pk, _instance_from_item(item)) for item in model.waiting.query(key, limit=limit)
        ]

    def used(self, key: str) -> int:
        """Slots in use on a counter (tests and the CLI read it)."""
        try:
            item = self.models.pool.get(key, consistent_read=True)
        except DoesNotExist:
            return 0
        return int(item.used or 0)

    def drop_idle_counters(self, keys: Sequence[str]) -> None:
        pool = self.models.pool
        for key in keys:
            try:
                pool(key).delete(condition=pool.used.does_not_exist() | (pool.used <= 0))
            except DeleteError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                # a straggler still holds a slot: its release keeps the count right

    def set_pool(self, name: str, slots: int) -> None:
        pool = self.models.pool
        pool(pool_key(name)).update(actions=[pool.slots.set(slots), pool.kind.set(POOL_KIND)])

    def pools(self) -> dict[str, int]:
        return {
            item.name.removeprefix("pool:"): int(item.slots)
            for item in self.models.pool.configured.query(POOL_KIND)
            if item.slots is not None
        }

    def heartbeat(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        try_number: int,
        now: dt.datetime,
    ) -> bool:
        model = self.models.task_instance
        item = model(instance_pk(dag_id, run_id), instance_sk(task_id, map_index))
        condition = (model.st == TaskState.RUNNING.value) & (model.try_n == try_number)
        # The first beat takes the lease (the claim did not: a try that ends
        # before it never enters the index). Guarded on RUNNING and the try, so
        # a beat that races the write ending the try cannot put it back.
        # Idempotent by itself (a retry sets the same time), so no token: the
        # item keeps the token of the claim that started the try.
        actions = [model.lease.set(RUNNING_LEASE), model.hb.set(now)]
        return self._guarded([(item, actions, condition)], token="")

    def stale_running(self, older_than: dt.datetime) -> list[tuple[str, TaskInstance]]:
        model = self.models.task_instance
        return [
            (item.pk, _instance_from_item(item))
            for item in model.running.query(RUNNING_LEASE, model.hb < older_than)
        ]
