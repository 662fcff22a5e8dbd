"""Many runs of a DAG of parallel chains at once (bench/throughput.py's shape):
max_active_tasks limits each run (Airflow 3), so when it covers one run's
width no try claims a slot, however many runs are active, and a hand-off
costs a chain's DynamoDB calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import botocore.client
import pytest
from moto import mock_aws

from chalicelib.core.slots import dag_run_key
from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

CHAINS, LENGTH, RUNS = 4, 3, 5


def chains_dag(max_active_tasks: int) -> DAG:
    with DAG(
        "chains",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1),
        max_active_runs=RUNS,
        max_active_tasks=max_active_tasks,
    ) as dag:
        for c in range(CHAINS):
            prev = None
            for i in range(LENGTH):
                t = EmptyOperator(task_id=f"c{c}_t{i}")
                if prev is not None:
                    prev >> t
                prev = t
    return dag


@pytest.fixture
def dynamo_stack() -> Iterator[Stack]:
    with mock_aws():
        store = make_dynamo_store(store_settings())
        yield Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def test_parallel_chains_of_many_runs_claim_no_slot(
    dynamo_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = dynamo_stack
    stack.deploy(chains_dag(max_active_tasks=CHAINS))  # one run at its width
    runs = [stack.scheduler.trigger("chains", run_id=f"r{i}")[0] for i in range(RUNS)]
    while stack.queue.pending:
        stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    assert len(stack.executor.invocations) == CHAINS * RUNS  # every chain's head
    first = stack.executor.invocations.pop(0)
    stack.run_worker(first)  # hands off to its chain's second task
    ops: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation, params):  # type: ignore[no-untyped-def]
        if client.meta.service_model.service_name == "dynamodb":
            table = params.get("TableName", "").rsplit("-", 1)[-1]
            ops.append(f"{operation} {table}".strip())
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    second = stack.executor.invocations.pop()
    assert (second.task_id, second.run_id) == ("c0_t1", first.run_id)
    stack.run_worker(second)
    monkeypatch.undo()
    # the run's settle count, claim, record, settle the run's counters: no slot
    # taken or given back (a transaction on a counter), no waiting try looked for
    assert sorted(ops) == sorted(
        ["GetItem runs", "UpdateItem instances", "UpdateItem instances", "UpdateItem runs"]
    ), ops
    stack.settle()
    for run in runs:
        assert stack.store.get_run("chains", run.run_id).state is DagRunState.SUCCESS
        assert stack.store.used(dag_run_key("chains", run.run_id)) == 0
