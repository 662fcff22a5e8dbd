"""The state store on DynamoDB through pynamodb: every change a conditional write.

Timeline of one guarded instance change (the Powertools lease pattern):

    reader sees (state=S, try=N) ── decides ── write "S->T if state=S and try=N"
                                   another writer wins first ──┘ condition fails: lost, skipped

An instance change and the counters it moves (the mapped placeholder's
per-state tally, the run's finished / failed-leaf counts) land in one
TransactWriteItems, so a crash can never leave a counter behind its state.
pynamodb's ConditionalCheckFailed errors become a plain "lost" here and never
leave this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core.engine import Command, TaskSummary
from chalicelib.core.progress import RunProgress
from chalicelib.core.runs import TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState
from chalicelib.store.base import Settled, StateStore, TransitionResult
from chalicelib.store.changes import (
    InstanceWrite,
    count_instances,
    missing_instance,
    plan,
    with_run_outcome,
)
from chalicelib.store.dynamo_dags import DynamoDagCatalog
from chalicelib.store.dynamo_runs import DynamoRuns
from chalicelib.store.dynamo_slots import DynamoSlots
from chalicelib.store.dynamo_view import (
    DynamoRunView,
    _instance_from_item,
    _map_entry,
    _progress_from_item,
    _tallies,
    fan_in_counts,
    map_window,
)
from chalicelib.store.models import (
    MAP_COUNT_KEY,
    MAP_WINDOW_KEY,
    StoreModels,
    instance_pk,
    instance_sk,
    split_instance_sk,
)
from chalicelib.store.settings import StoreSettings
from chalicelib.store.settles import SETTLE_COUNT, Settler, settle_token


class DynamoStateStore(DynamoDagCatalog, DynamoRuns, DynamoSlots, StateStore):
    """The state store on DynamoDB; this module holds the task-instance changes,
    the parts (catalog, runs, slots) their own modules."""

    def __init__(
        self,
        settings: StoreSettings | None = None,
        *,
        models: StoreModels | None = None,
        s3_client: Any = None,
    ):
        super().__init__(settings, models=models, s3_client=s3_client)
        from chalicelib.store.backfills import DynamoBackfillStore

        self.backfills = DynamoBackfillStore(self.models, self._connection, self)
        from chalicelib.store.deadlines import DynamoDeadlineStore

        self.deadlines = DynamoDeadlineStore(self.models, self._connection)
        self._settler = Settler()

    def tidy_settles(self) -> None:
        self._settler.trim_due()

    def settle_floor(self, dag_id: str, run_id: str) -> int | None:
        """The run's settle count now, read eventually consistent (half a read
        unit): an older count is still a valid floor, only a more cautious one."""
        model = self.models.dag_run
        try:
            item = model.get(dag_id, run_id, attributes_to_get=["dag_id", "run_id", SETTLE_COUNT])
        except DoesNotExist:
            return None
        return int(item.sq or 0)

    # ------------------------------------------------------- instances

    def run_view(self, dag_id: str, run_id: str, spec: DagSpec) -> DynamoRunView:
        return DynamoRunView(self, dag_id, run_id, spec)

    def get_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> TaskInstance | None:
        try:
            item = self.models.task_instance.get(
                instance_pk(dag_id, run_id),
                instance_sk(task_id, map_index),
                consistent_read=True,
            )
        except DoesNotExist:
            return None
        return _instance_from_item(item)

    def apply(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        commands: Sequence[Command],
        now: dt.datetime,
        on_taken: Callable[[Command], None] | None = None,
    ) -> list[Command]:
        taken: list[Command] = []
        moved = False
        for command in commands:
            write = plan(spec, command, now)
            if write is None:
                taken.append(command)
                continue
            if not self._guarded(self._ops(dag_id, run_id, write), write.token):
                continue  # lost: someone applied it (or something newer) first
            taken.append(command)
            if on_taken is not None:
                on_taken(command)  # e.g. dispatch now, not after the whole batch
            moved = moved or write.progress.may_finish_run
        if not moved:
            return taken
        item = self._run_item(dag_id, run_id)
        outcome = _progress_from_item(item).outcome
        return with_run_outcome(taken, moved, outcome, item.st == DagRunState.RUNNING.value)

    def _transition(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        write: InstanceWrite,
        *,
        read_outcome: bool,
        defer_counters: bool,
    ) -> TransitionResult:
        ops = self._ops(dag_id, run_id, write)
        run_model = self.models.dag_run
        now_ops = [op for op in ops if not isinstance(op[0], run_model)]
        if defer_counters or len(ops) == 1:
            # The instance (with any slots it gives back); the run's counters,
            # if any, follow in settle_counters. A single write's ALL_NEW answer
            # gives the instance for free.
            if not self._guarded(now_ops, write.token):
                return TransitionResult(False)
            written = _instance_from_item(ops[0][0]) if len(now_ops) == 1 else None
            return TransitionResult(True, written, None, write if defer_counters else None)
        if not self._guarded(ops, write.token):
            return TransitionResult(False)
        # No read-back of the instance: the hot path (claim, record) never needs
        # it, and callers that do call get_instance.
        outcome = None
        if read_outcome and write.progress.finished:
            item = self._run_item(dag_id, run_id)
            if item.st == DagRunState.RUNNING.value:
                outcome = _progress_from_item(item).outcome
        return TransitionResult(True, None, outcome)

    def _claim(
        self, dag_id: str, run_id: str, spec: DagSpec, write: InstanceWrite
    ) -> TransitionResult:
        (op,) = self._ops(dag_id, run_id, write)  # entering RUNNING moves no counter
        if not self._guarded([op], write.token):
            return TransitionResult(False)
        # the ALL_NEW answer (or, after a lost answer, our own write read back)
        return TransitionResult(True, _instance_from_item(op[0]))

    def settle_counters(self, dag_id: str, run_id: str, pending: Any) -> Settled:
        run_model = self.models.dag_run
        ops = [op for op in self._ops(dag_id, run_id, pending) if isinstance(op[0], run_model)]
        if not ops:  # what the deferred write owes: the run item's counters
            return Settled(self.run_progress(dag_id, run_id))
        ((item, actions, condition),) = ops  # the run item: counters and the map's tally
        # One UpdateItem whose token in the run's settle log makes a retried (or
        # repeated) settle of the same write a no-op; it answers with the counters.
        self._settler.settle(
            item, actions, condition, settle_token(pending.token), pending.settle_floor
        )
        progress = _progress_from_item(item)
        fan_in = {join: fan_in_counts(item, join) for join, _, _ in pending.fan_in_moves}
        if pending.map_index < 0:
            return Settled(progress, fan_in=fan_in)
        entry = _map_entry(item, pending.task_id)
        summary = TaskSummary(
            missing_instance(pending.task_id, -1),
            mapped_count=int(entry[MAP_COUNT_KEY]),
            state_counts=_tallies(entry),
            window=map_window(entry),
        )
        return Settled(progress, summary)

    def recount(self, dag_id: str, run_id: str, spec: DagSpec) -> RunProgress:
        ti = self.models.task_instance
        items = list(ti.query(instance_pk(dag_id, run_id), consistent_read=True))
        mapped = {
            split_instance_sk(item.sk)[0]: int(item.mcount)
            for item in items
            if item.mcount is not None and split_instance_sk(item.sk)[1] < 0
        }
        progress, tallies = count_instances(spec, mapped, [_instance_from_item(i) for i in items])
        run_model = self.models.dag_run
        windows = {
            split_instance_sk(item.sk)[0]: {MAP_WINDOW_KEY: int(item.mwin)}
            for item in items
            if item.mwin is not None and split_instance_sk(item.sk)[1] < 0
        }
        maps = {
            task_id: {
                MAP_COUNT_KEY: count,
                **windows.get(task_id, {}),
                **{s.value: n for s, n in tallies[task_id].items()},
            }
            for task_id, count in mapped.items()
        }
        run_model(dag_id, run_id).update(
            actions=[
                run_model.total.set(progress.total),
                run_model.done.set(progress.finished),
                run_model.failed.set(progress.failed_leaves),
                run_model.maps.set(maps),
                run_model.fanin.set(
                    {
                        join: {state.value: n for state, n in counts.items()}
                        for join, counts in spec.fan_ins.count(
                            _instance_from_item(i) for i in items
                        ).items()
                    }
                ),
            ]
        )
        return progress
