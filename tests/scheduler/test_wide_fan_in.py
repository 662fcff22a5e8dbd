"""A join over many distinct tasks, end to end on both stores: it is decided
from counts on the run item (core.fan_in), so one completion costs the same
DynamoDB calls however wide the fan-in, and the counts follow clears,
retries and branches."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import botocore.client
import pytest
from moto import mock_aws

from chalicelib.core.fan_in import WIDE_FAN_IN
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.scheduler.interventions import Interventions, run_instances
from chalicelib.sdk import DAG, TriggerRule, task
from chalicelib.store.base import StateStore
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.memory import InMemoryStateStore
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

WIDTH = WIDE_FAN_IN + 4
ATTEMPTS: Counter[str] = Counter()
S, F, K = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED


@pytest.fixture
def stack(store: StateStore) -> Stack:
    ATTEMPTS.clear()
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def wide_dag(
    dag_id: str,
    width: int = WIDTH,
    *,
    rule: TriggerRule = TriggerRule.ALL_SUCCESS,
    fail_first: bool = False,
    retries: int = 0,
    branch: bool = False,
    max_active_tasks: int = 16,
) -> DAG:
    """start -> w0 .. w{width-1} -> join. w0 may fail its first try; with
    ``branch`` start is a branch that follows w0 only."""
    with DAG(
        dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1),
        max_active_tasks=max_active_tasks,
        max_active_runs=1,
    ) as dag:
        if branch:

            @task.branch(task_id="start")
            def pick() -> str:
                return "w0"

            start = pick()
        else:
            start = EmptyOperator(task_id="start")

        @task(task_id="w0", retries=retries, retry_delay=dt.timedelta(seconds=5))
        def first() -> None:
            ATTEMPTS["w0"] += 1
            if fail_first and ATTEMPTS["w0"] == 1:
                raise RuntimeError("first try fails")

        middle = [first(), *(EmptyOperator(task_id=f"w{i}") for i in range(1, width))]
        join = EmptyOperator(task_id="join", trigger_rule=rule)
        start >> middle
        middle >> join
    return dag


def counts(stack: Stack, dag_id: str, run_id: str) -> dict[TaskState, int]:
    run = stack.store.get_run(dag_id, run_id)
    spec = stack.scheduler.specs.get(dag_id, run.version)
    return dict(stack.store.run_view(dag_id, run_id, spec).fan_in(["join"])["join"])


def test_a_failed_upstream_cleared_moves_the_counts_back_and_the_join_reruns(
    stack: Stack,
) -> None:
    spec = stack.deploy(wide_dag("flaky_wide", fail_first=True))
    assert spec.fan_ins.is_wide("join")
    run, _ = stack.scheduler.trigger("flaky_wide")
    stack.settle()
    assert stack.store.get_run("flaky_wide", run.run_id).state is DagRunState.FAILED
    assert stack.states("flaky_wide", run.run_id)["join"] == "upstream_failed"
    assert counts(stack, "flaky_wide", run.run_id) == {S: WIDTH - 1, F: 1}

    instances = {ti.task_id: ti for ti in run_instances(stack.scheduler, run, spec)}
    Interventions(stack.scheduler).clear(
        run, spec, [instances["w0"], instances["join"]], dry_run=False
    )
    assert counts(stack, "flaky_wide", run.run_id) == {S: WIDTH - 1}  # w0 is waiting again
    stack.settle()

    assert stack.store.get_run("flaky_wide", run.run_id).state is DagRunState.SUCCESS
    assert set(stack.states("flaky_wide", run.run_id).values()) == {"success"}
    assert counts(stack, "flaky_wide", run.run_id) == {S: WIDTH}


def test_marking_a_failed_upstream_success_moves_its_count(stack: Stack) -> None:
    spec = stack.deploy(wide_dag("marked_wide", fail_first=True))
    run, _ = stack.scheduler.trigger("marked_wide")
    stack.settle()
    instances = {ti.task_id: ti for ti in run_instances(stack.scheduler, run, spec)}
    Interventions(stack.scheduler).mark(run, spec, [instances["w0"]], S, dry_run=False)
    assert counts(stack, "marked_wide", run.run_id) == {S: WIDTH}
    stack.settle()
    assert stack.store.get_run("marked_wide", run.run_id).state is DagRunState.SUCCESS
    assert ATTEMPTS["w0"] == 1  # marked, not run again


def test_an_upstream_up_for_retry_is_not_counted_and_the_join_waits(stack: Stack) -> None:
    stack.deploy(wide_dag("retried_wide", fail_first=True, retries=1))
    run, _ = stack.scheduler.trigger("retried_wide")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])  # the run starts
    while stack.executor.invocations:  # start, then every middle task once
        stack.run_worker(stack.executor.invocations.pop(0))
    states = stack.states("retried_wide", run.run_id)
    assert states["w0"] == "up_for_retry" and states["join"] == "none"
    assert counts(stack, "retried_wide", run.run_id) == {S: WIDTH - 1}
    stack.settle()  # the retry timer fires, w0 succeeds, the join runs
    assert stack.store.get_run("retried_wide", run.run_id).state is DagRunState.SUCCESS
    assert counts(stack, "retried_wide", run.run_id) == {S: WIDTH}
    assert ATTEMPTS["w0"] == 2


def test_a_branch_skipping_most_upstream_tasks_decides_the_join_from_counts(
    stack: Stack,
) -> None:
    stack.deploy(
        wide_dag("branchy_wide", rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, branch=True)
    )
    run, _ = stack.scheduler.trigger("branchy_wide")
    stack.settle()
    states = stack.states("branchy_wide", run.run_id)
    assert states["w0"] == "success" and states["w1"] == "skipped"
    assert states["join"] == "success"
    assert counts(stack, "branchy_wide", run.run_id) == {S: 1, K: WIDTH - 1}


def test_recount_rebuilds_the_counts_of_a_run(stack: Stack) -> None:
    spec = stack.deploy(wide_dag("recounted_wide", fail_first=True))
    run, _ = stack.scheduler.trigger("recounted_wide")
    stack.settle()
    store = stack.store
    if isinstance(store, InMemoryStateStore):  # lose the counts, as a crash would
        store._runs[("recounted_wide", run.run_id)].fan_in = {"join": Counter()}
    else:
        assert isinstance(store, DynamoStateStore)
        model = store.models.dag_run
        model("recounted_wide", run.run_id).update(actions=[model.fanin.set({"join": {}})])
    assert counts(stack, "recounted_wide", run.run_id) == {}
    store.recount("recounted_wide", run.run_id, spec)
    assert counts(stack, "recounted_wide", run.run_id) == {S: WIDTH - 1, F: 1}


# ------------------------------------------------------------- the cost


class _DynamoCalls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.ops: list[str] = []
        original = botocore.client.BaseClient._make_api_call

        def counting(client, operation, params):  # type: ignore[no-untyped-def]
            if client.meta.service_model.service_name == "dynamodb":
                self.ops.append(operation)
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)


@pytest.fixture
def dynamo_stack() -> Iterator[Stack]:
    with mock_aws():
        store = make_dynamo_store(store_settings())
        yield Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def _one_completion_calls(stack: Stack, width: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DynamoDB calls of one middle task's worker (claim, run, record, hand-off),
    neither the first nor the last of the fan-in to finish."""
    dag_id = f"wide_{width}"
    stack.deploy(wide_dag(dag_id, width, max_active_tasks=width + 2))  # no slots to claim
    stack.scheduler.trigger(dag_id)
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    stack.run_worker(stack.executor.invocations.pop(0))  # start: dispatches the middle
    assert len(stack.executor.invocations) == width
    stack.run_worker(stack.executor.invocations.pop(0))
    calls = _DynamoCalls(monkeypatch)
    stack.run_worker(stack.executor.invocations.pop(0))
    monkeypatch.undo()
    stack.executor.invocations.clear()
    return calls.ops


def test_a_completion_costs_the_same_dynamodb_calls_at_any_fan_in_width(
    dynamo_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrow = _one_completion_calls(dynamo_stack, WIDE_FAN_IN + 4, monkeypatch)
    wide = _one_completion_calls(dynamo_stack, 250, monkeypatch)
    assert wide == narrow, wide
    assert "BatchGetItem" not in wide  # the join's upstream tasks are not read
    # the run's settle count (read before the record), claim, record, settle
    # (counters and the join's counts, answered by the same UpdateItem)
    assert sorted(wide) == sorted(["GetItem", "UpdateItem", "UpdateItem", "UpdateItem"]), wide
