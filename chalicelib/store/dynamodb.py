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
import json
from collections.abc import Callable, Sequence
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.aws.retries import retry_settings
from chalicelib.core.engine import Command, TaskSummary
from chalicelib.core.progress import RunProgress, initial_progress
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.slots import SlotClaim, pool_key
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.store.base import (
    ActiveRun,
    DagRecord,
    DagVersionRecord,
    RunNotFound,
    Settled,
    StateStore,
    StoreError,
    TransitionResult,
)
from chalicelib.store.changes import (
    ExpansionWrite,
    InstanceWrite,
    count_instances,
    missing_instance,
    plan,
    with_run_outcome,
)
from chalicelib.store.dynamo_view import (
    DynamoRunView,
    _instance_from_item,
    _map_entry,
    _progress_from_item,
    _run_from_item,
    _tallies,
    fan_in_counts,
)
from chalicelib.store.models import (
    DEFAULT_TENANT,
    DUE_SHARD,
    MAP_COUNT_KEY,
    POOL_KIND,
    RUN_COUNTER,
    RUNNING_LEASE,
    VERSION_COUNTER,
    StoreModels,
    build_models,
    instance_pk,
    instance_sk,
    split_instance_sk,
)
from chalicelib.store.past_runs import query_by_logical_date
from chalicelib.store.settings import StoreSettings
from chalicelib.store.writes import (
    TRANSACTION_CONFLICT_RETRIES,
    GuardedWriter,
    Op,
    conflict_verdict,
    derived_token,
    new_token,
    write_ops,
)

CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoStateStore(StateStore):
    def __init__(
        self,
        settings: StoreSettings | None = None,
        *,
        models: StoreModels | None = None,
        s3_client: Any = None,
    ):
        self.settings = settings or StoreSettings()
        self.models = models or build_models(self.settings)
        self._s3 = s3_client
        self._connection = Connection(
            region=self.settings.region,
            host=self.settings.endpoint_url,
            retry_configuration=retry_settings(),  # type: ignore[arg-type]
        )
        self._writer = GuardedWriter(self._connection)
        from chalicelib.store.backfills import DynamoBackfillStore

        self.backfills = DynamoBackfillStore(self.models, self._connection, self)
        from chalicelib.store.deadlines import DynamoDeadlineStore

        self.deadlines = DynamoDeadlineStore(self.models, self._connection)

    # ------------------------------------------------------------ DAGs

    def upsert_dag(self, record: DagRecord) -> None:
        due = record.active and not record.paused and record.next_due_at is not None
        self.models.dag(
            record.dag_id,
            ver=record.current_version,
            paused=record.paused,
            active=record.active,
            due_shard=DUE_SHARD if due else None,  # sparse: only schedulable DAGs are indexed
            due_at=record.next_due_at,
            tenant=record.tenant,
            tn=record.tenant or DEFAULT_TENANT,
            li_start=record.last_interval_start,
            li_end=record.last_interval_end,
            summ=record.summary,
        ).save()

    def get_dag(self, dag_id: str) -> DagRecord | None:
        try:
            item = self.models.dag.get(dag_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._dag_record(item)

    @staticmethod
    def _dag_record(item: Any) -> DagRecord:
        return DagRecord(
            dag_id=item.dag_id,
            current_version=item.ver,
            paused=bool(item.paused),
            active=bool(item.active),
            next_due_at=item.due_at,
            tenant=item.tenant,
            last_interval_start=item.li_start,
            last_interval_end=item.li_end,
            summary=item.summ,
        )

    def due_dags(self, now: dt.datetime) -> list[str]:
        model = self.models.dag
        return [item.dag_id for item in model.due.query(DUE_SHARD, model.due_at <= now)]

    def put_dag_version(self, record: DagVersionRecord) -> bool:
        model = self.models.dag_version
        spec: str | None = record.spec_json
        spec_key: str | None = None
        if len(record.spec_json.encode()) > self.settings.large_value_bytes:
            spec_key = f"specs/{record.dag_id}/{record.version}.json"
            # Content-addressed, so a repeated upload writes the same bytes.
            self._s3_client().put_object(
                Bucket=self.settings.bucket, Key=spec_key, Body=record.spec_json.encode()
            )
            spec = None
        if self._version_exists(record.dag_id, record.version):
            return False
        item = model(
            record.dag_id,
            record.version,
            spec=spec,
            spec_key=spec_key,
            bundle_key=record.bundle_key,
            created_at=record.created_at,
            git_commit=record.git_commit,
            vnum=self._next_version_number(record.dag_id),
        )
        try:
            item.save(condition=model.ver.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot store version {record.version} of {record.dag_id}") from exc
        return True

    def _version_exists(self, dag_id: str, version: str) -> bool:
        model = self.models.dag_version
        return bool(
            list(model.query(dag_id, model.ver == version, attributes_to_get=["ver"], limit=1))
        )

    def _next_version_number(self, dag_id: str) -> int:
        """Airflow numbers a DAG's versions 1, 2, ...; a deploy killed after this
        leaves a gap, never a duplicate (the counter only moves up)."""
        model = self.models.dag_version
        counter = model(dag_id, VERSION_COUNTER)
        counter.update(actions=[model.n.add(1)])
        return int(counter.n)

    def get_dag_version(self, dag_id: str, version: str) -> DagVersionRecord | None:
        try:
            item = self.models.dag_version.get(dag_id, version, consistent_read=True)
        except DoesNotExist:
            return None
        spec_json = item.spec
        if spec_json is None:
            body = self._s3_client().get_object(Bucket=self.settings.bucket, Key=item.spec_key)
            spec_json = body["Body"].read().decode()
        return DagVersionRecord(
            dag_id=item.dag_id,
            version=item.ver,
            spec_json=spec_json,
            created_at=item.created_at,
            bundle_key=item.bundle_key,
            git_commit=item.git_commit,
            number=None if item.vnum is None else int(item.vnum),
        )

    def _s3_client(self) -> Any:
        if self._s3 is None:
            import boto3  # type: ignore[import-untyped]

            self._s3 = boto3.client(
                "s3", region_name=self.settings.region, endpoint_url=self.settings.endpoint_url
            )
        return self._s3

    # ------------------------------------------------------------ runs

    def create_run(self, run: DagRun, spec: DagSpec) -> bool:
        model = self.models.dag_run
        progress = initial_progress(spec)
        item = model(
            run.dag_id,
            run.run_id,
            st=run.state.value,
            run_type=run.run_type.value,
            logical=run.logical_date,
            di_start=run.data_interval_start,
            di_end=run.data_interval_end,
            run_after=run.run_after,
            ver=run.version or None,
            conf=json.dumps(run.conf, sort_keys=True),
            start=run.start_date,
            end=run.end_date,
            total=progress.total,
            done=0,
            failed=0,
            maps={},
            fanin={join: {} for join in spec.fan_ins.counted},
            note=run.note,
            tn=run.tenant or DEFAULT_TENANT,  # the key of by_tenant, so never missing
            bf=run.backfill_id,
        )
        # The DAG's run counter moves in the same transaction, so the API's run
        # list reads its total in one GetItem instead of counting every run.
        counter = model(run.dag_id, RUN_COUNTER)
        # The token makes botocore's retry of an applied but unanswered request
        # a no-op, so the counter moves once; a repeated tick or event is a new
        # call (a new token) and fails on the existing deterministic id instead.
        token = new_token()
        what = f"run {run.run_id} of {run.dag_id}"
        for _ in range(TRANSACTION_CONFLICT_RETRIES):
            try:
                with TransactWrite(
                    connection=self._connection, client_request_token=token
                ) as transaction:
                    transaction.save(item, condition=model.run_id.does_not_exist())
                    transaction.update(counter, actions=[model.n.add(1)])
            except TransactWriteError as exc:
                verdict = conflict_verdict(exc, what)
                if verdict is None:
                    continue
                return verdict
            return True
        raise StoreError(f"creating run {run.run_id} of {run.dag_id} kept conflicting")

    def run_count(self, dag_id: str) -> int:
        """How many runs a DAG has (created minus deleted), from its counter item."""
        try:
            item = self.models.dag_run.get(dag_id, RUN_COUNTER, attributes_to_get=["n"])
        except DoesNotExist:
            return 0
        return int(item.n or 0)

    def _run_item(self, dag_id: str, run_id: str) -> Any:
        try:
            return self.models.dag_run.get(dag_id, run_id, consistent_read=True)
        except DoesNotExist:
            return None

    def get_run(self, dag_id: str, run_id: str) -> DagRun | None:
        item = self._run_item(dag_id, run_id)
        return None if item is None else _run_from_item(item)

    def runs_by_logical_date(self, dag_id: str, **where: Any) -> list[DagRun]:
        """One Query of the by_logical index (store.past_runs)."""
        return query_by_logical_date(self.models.dag_run, dag_id, **where)

    def run_progress(self, dag_id: str, run_id: str) -> RunProgress:
        item = self._run_item(dag_id, run_id)
        if item is None:
            raise RunNotFound(f"no run {run_id!r} of DAG {dag_id!r}")
        return _progress_from_item(item)

    def active_runs(self, dag_id: str) -> list[ActiveRun]:
        # Through the by_state index: cost grows with active runs, not with history.
        model = self.models.dag_run
        found: list[ActiveRun] = []
        for state in (DagRunState.QUEUED, DagRunState.RUNNING):
            for item in model.by_state.query(state.value, filter_condition=model.dag_id == dag_id):
                found.append(ActiveRun(item.dag_id, item.run_id, state, item.run_after))
        return found

    def running_runs(self) -> list[ActiveRun]:
        model = self.models.dag_run
        return [
            ActiveRun(item.dag_id, item.run_id, DagRunState.RUNNING, item.run_after)
            for item in model.by_state.query(DagRunState.RUNNING.value)
        ]

    def check_stalled(
        self, dag_id: str, run_id: str, now: dt.datetime, stall: dt.timedelta
    ) -> bool:
        model = self.models.dag_run
        item = self._run_item(dag_id, run_id)
        done = int(item.done or 0)
        checked_at = item.chk_at
        unchanged = item.chk_done is not None and int(item.chk_done) == done
        stalled = unchanged and checked_at is not None and checked_at <= now - stall
        if unchanged and not stalled:
            return False
        # Guarded on what we read, so of two ticks only one reports the stall.
        previous = (
            model.chk_at.does_not_exist() if checked_at is None else model.chk_at == checked_at
        )
        return (
            self._guarded(
                [
                    (
                        model(dag_id, run_id),
                        [model.chk_done.set(done), model.chk_at.set(now)],
                        previous,
                    )
                ]
            )
            and stalled
        )

    def start_run(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        model = self.models.dag_run
        return self._update_run(
            dag_id,
            run_id,
            [model.st.set(DagRunState.RUNNING.value), model.start.set(now)],
            model.st == DagRunState.QUEUED.value,
        )

    def finish_run(self, dag_id: str, run_id: str, state: DagRunState, now: dt.datetime) -> bool:
        model = self.models.dag_run
        return self._update_run(
            dag_id,
            run_id,
            [model.st.set(state.value), model.end.set(now)],
            model.st == DagRunState.RUNNING.value,
        )

    def reopen_run(self, dag_id: str, run_id: str, expected: DagRunState) -> bool:
        model = self.models.dag_run
        return self._update_run(
            dag_id,
            run_id,
            [model.st.set(DagRunState.QUEUED.value), model.end.remove()],
            model.st == expected.value,
        )

    def restate_run(
        self, dag_id: str, run_id: str, expected: DagRunState, new: DagRunState, now: dt.datetime
    ) -> bool:
        model = self.models.dag_run
        actions = [model.st.set(new.value), model.end.set(now)]
        if expected is DagRunState.QUEUED:
            actions.append(model.start.set(now))
        return self._update_run(dag_id, run_id, actions, model.st == expected.value)

    def _update_run(
        self, dag_id: str, run_id: str, actions: list[Action], condition: Condition
    ) -> bool:
        model = self.models.dag_run
        return self._guarded([(model(dag_id, run_id), actions, condition & model.st.exists())])

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
        ((item, actions, _),) = ops  # the run item: counters and the map's tally
        # A transaction with a token derived from the write: a retried (or
        # repeated) settle of the same write is a no-op, never a second ADD.
        # Transactions answer with nothing, so the moved counters are read.
        self._writer.settle(item, actions, derived_token(pending.token, "counters"))
        item = self._run_item(dag_id, run_id)
        progress = _progress_from_item(item)
        fan_in = {join: fan_in_counts(item, join) for join, _, _ in pending.fan_in_moves}
        if pending.map_index < 0:
            return Settled(progress, fan_in=fan_in)
        entry = _map_entry(item, pending.task_id)
        summary = TaskSummary(
            missing_instance(pending.task_id, -1),
            mapped_count=int(entry[MAP_COUNT_KEY]),
            state_counts=_tallies(entry),
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
        maps = {
            task_id: {MAP_COUNT_KEY: count, **{s.value: n for s, n in tallies[task_id].items()}}
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
        # Idempotent by itself (a retry sets the same time), so no token: the
        # item keeps the token of the claim that started the try.
        return self._guarded([(item, [model.hb.set(now)], condition)], token="")

    def stale_running(self, older_than: dt.datetime) -> list[tuple[str, TaskInstance]]:
        model = self.models.task_instance
        return [
            (item.pk, _instance_from_item(item))
            for item in model.running.query(RUNNING_LEASE, model.hb < older_than)
        ]

    # --------------------------------------------------------- writes

    def _ops(self, dag_id: str, run_id: str, write: InstanceWrite | ExpansionWrite) -> list[Op]:
        return write_ops(self.models, dag_id, run_id, write)

    def _guarded(self, ops: list[Op], token: str | None = None) -> bool:
        """Run ``ops`` atomically; False when the first op's condition failed
        to someone else's write (see store.writes for ``token``)."""
        return self._writer.guarded(ops, token)
