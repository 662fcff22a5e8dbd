"""Runs on DynamoDB: created once under a deterministic id with the DAG's
run counter in the same transaction, read, and moved between states only by
writes conditioned on the state they expect."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.core.progress import RunProgress, initial_progress
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState
from chalicelib.store.base import ActiveRun, RunNotFound, StoreError
from chalicelib.store.dynamo_base import DynamoStoreBase
from chalicelib.store.dynamo_view import _progress_from_item, _run_from_item
from chalicelib.store.models import DEFAULT_TENANT, RUN_COUNTER
from chalicelib.store.past_runs import query_by_logical_date
from chalicelib.store.writes import TRANSACTION_CONFLICT_RETRIES, conflict_verdict, new_token


class DynamoRuns(DynamoStoreBase):
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
