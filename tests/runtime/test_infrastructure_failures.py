"""An AWS error inside a try is the environment's, not the task's: reading
upstream results for templates or a map, when AWS keeps throttling, ends the
try as an infrastructure failure that is retried without charging the task's
``retries``, within a bound (MAX_INFRASTRUCTURE_RETRIES).

Runs on DynamoDB and the results table on moto, through the scheduler harness
(fake clock, explicit delivery); faults come from tests.aws_faults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pendulum
import pytest
from moto import mock_aws

from chalicelib.core.retries import MAX_INFRASTRUCTURE_RETRIES
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.sdk import DAG, task
from chalicelib.store.results import DynamoXComStore, build_result_model
from operators.bash import BashOperator
from tests.aws_faults import AwsFaults
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

RESULT_READS = ("GetItem", "Query", "BatchGetItem")


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        settings = store_settings()
        store = make_dynamo_store(settings)
        model = build_result_model(settings)
        model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        harness = Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
        harness.deps.xcoms = lambda dag_id, run_id: DynamoXComStore(dag_id, run_id, model=model)
        yield harness


def _throttle_result_reads(faults: AwsFaults, times: int | None) -> None:
    def results_table(request: object) -> bool:
        return b"-results" in (getattr(request, "body", None) or b"")

    for operation in RESULT_READS:
        faults.refuse("dynamodb", operation, times=times, when=results_table)


def _templated_dag() -> DAG:
    with DAG("templated", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:

        @task
        def produce() -> str:
            return "hello"

        echo = BashOperator(
            task_id="echo",
            bash_command="echo {{ ti.xcom_pull(task_ids='produce') }}",
            retries=0,
        )
        produce() >> echo
    return dag


def _mapped_dag() -> DAG:
    with DAG("mapped", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:

        @task
        def produce() -> list[int]:
            return [1, 2]

        @task(retries=0)
        def double(x: int) -> int:
            return 2 * x

        double.expand(x=produce())
    return dag


def _start(stack: Stack, dag: DAG) -> str:
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger(dag.dag_id)
    return run.run_id


def _run_upstream_only(stack: Stack) -> None:
    """Start the run and run ``produce`` with AWS healthy; the next tries wait."""
    while stack.queue.pending:
        message, _ = stack.queue.pending.pop(0)
        stack.scheduler.handle(message)
    (first,) = stack.executor.invocations
    stack.executor.invocations.clear()
    assert first.task_id == "produce"
    stack.run_worker(first)


def test_a_throttled_template_read_is_retried_without_charging_retries(stack: Stack) -> None:
    run_id = _start(stack, _templated_dag())
    _run_upstream_only(stack)
    with AwsFaults() as faults:
        _throttle_result_reads(faults, times=5)  # one read's every attempt
        (echo,) = stack.executor.invocations
        stack.executor.invocations.clear()
        outcome = stack.run_worker(echo)
    assert outcome.state is TaskState.UP_FOR_RETRY  # retries=0: a task failure would be FAILED
    ti = stack.store.get_instance("templated", run_id, "echo", -1)
    assert ti is not None
    assert (ti.retry_base, ti.infra_failures) == (1, 1)
    assert ti.error is not None and ti.error.startswith("infrastructure failure")

    stack.settle()  # AWS healthy again: the timer fires and try 2 runs

    assert stack.store.get_run("templated", run_id).state is DagRunState.SUCCESS
    ti = stack.store.get_instance("templated", run_id, "echo", -1)
    assert ti is not None and ti.state is TaskState.SUCCESS and ti.try_number == 2


def test_a_throttled_map_expansion_is_retried_without_charging_retries(stack: Stack) -> None:
    run_id = _start(stack, _mapped_dag())
    _run_upstream_only(stack)
    with AwsFaults() as faults:
        _throttle_result_reads(faults, times=None)
        outcomes = []
        while stack.executor.invocations:
            outcomes.append(stack.run_worker(stack.executor.invocations.pop(0)))
    assert outcomes and all(o.state is TaskState.UP_FOR_RETRY for o in outcomes)

    stack.settle()

    assert stack.store.get_run("mapped", run_id).state is DagRunState.SUCCESS
    assert stack.states("mapped", run_id) == {
        "produce": "success",
        "double[0]": "success",
        "double[1]": "success",
    }


def test_a_permanently_broken_environment_fails_the_task_within_the_bound(
    stack: Stack,
) -> None:
    run_id = _start(stack, _templated_dag())
    _run_upstream_only(stack)
    with AwsFaults() as faults:
        _throttle_result_reads(faults, times=None)
        stack.settle(max_steps=1000)

    assert stack.store.get_run("templated", run_id).state is DagRunState.FAILED
    ti = stack.store.get_instance("templated", run_id, "echo", -1)
    assert ti is not None and ti.state is TaskState.FAILED
    # retries=0: one charged try, after MAX_INFRASTRUCTURE_RETRIES free ones
    assert ti.try_number == MAX_INFRASTRUCTURE_RETRIES + 1
    assert ti.infra_failures == MAX_INFRASTRUCTURE_RETRIES


def test_a_throttled_heartbeat_does_not_stop_the_heartbeat_thread() -> None:
    """A heartbeat thread that died on one throttled beat would have its live
    try reaped as 'worker heartbeat lost'."""
    import threading
    from types import SimpleNamespace

    from botocore.exceptions import ClientError

    from chalicelib.core.messages import WorkerMessage
    from chalicelib.runtime.worker import _beat

    answers: list[object] = [
        ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem"),
        True,
        False,  # no longer running: the thread ends here
    ]
    calls: list[int] = []

    def heartbeat(*args: object) -> bool:
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    deps = SimpleNamespace(
        heartbeat_seconds=0,
        store=SimpleNamespace(heartbeat=heartbeat),
        clock=lambda: dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    message = WorkerMessage(dag_id="d", run_id="r", task_id="t", try_number=1, version="v")
    _beat(deps, message, threading.Event(), None)  # type: ignore[arg-type]
    assert len(calls) == 3
