"""A worker whose task has run does not give up when AWS keeps refusing (past
botocore's own retries) the writes that record its outcome or hand off to the
next task: it repeats them with backoff, and a repeat is the same write.

Before, the error escaped the worker: the try stayed RUNNING until the reaper
failed it as "worker heartbeat lost" (charging the user's retries), and a
downstream try could sit QUEUED, never dispatched, until reconciliation.

DynamoDB on moto through the scheduler harness (fake clock, explicit
delivery, the worker's sleeps recorded, not slept); faults from tests.aws_faults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pendulum
import pytest
from moto import mock_aws

from chalicelib.core.states import DagRunState, TaskState
from chalicelib.runtime.recording import PERSIST_DELAYS
from chalicelib.sdk import DAG, task
from tests.aws_faults import AwsFaults
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

STARTS: list[str] = []


@pytest.fixture
def stack() -> Iterator[Stack]:
    STARTS.clear()
    with mock_aws():
        harness = Stack(
            store=make_dynamo_store(store_settings()),
            clock=FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        )
        harness.slept = []  # type: ignore[attr-defined]
        harness.deps.sleep = harness.slept.append  # type: ignore[attr-defined]
        yield harness


def _chain() -> DAG:
    with DAG("chain", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:

        @task(retries=0)
        def first() -> int:
            STARTS.append("first")
            return 1

        @task(retries=0)
        def second(value: int) -> int:
            STARTS.append("second")
            return value + 1

        second(first())
    return dag


def _first_try(stack: Stack) -> tuple[str, object]:
    stack.deploy(_chain())
    run, _ = stack.scheduler.trigger("chain")
    while stack.queue.pending:
        stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    (message,) = stack.executor.invocations
    stack.executor.invocations.clear()
    return run.run_id, message


def _records_success(request: object) -> bool:
    """The worker's write of ``first``'s outcome (sets st to success)."""
    body = getattr(request, "body", None) or b""
    return b"task-instances" in body and b'"success"' in body and b"first#" in body


def test_an_outcome_write_refused_past_botocores_retries_is_repeated(stack: Stack) -> None:
    run_id, message = _first_try(stack)
    with AwsFaults() as faults:
        faults.refuse("dynamodb", "UpdateItem", times=5, when=_records_success)
        outcome = stack.run_worker(message)  # type: ignore[arg-type]
        assert faults.rules[0].hits == 5  # botocore's five attempts, all refused

    assert outcome.recorded and outcome.state is TaskState.SUCCESS
    assert stack.slept == [PERSIST_DELAYS[0]]  # type: ignore[attr-defined]
    stack.settle()
    assert stack.store.get_run("chain", run_id).state is DagRunState.SUCCESS
    first = stack.store.get_instance("chain", run_id, "first", -1)
    assert first is not None and first.try_number == 1 and first.error is None
    assert STARTS == ["first", "second"]


def test_an_outcome_write_that_landed_unanswered_is_recognised_on_repeat(stack: Stack) -> None:
    """Every attempt applied with its answer lost, and the read-back refused
    too: the repeat meets its own write (same token) and counts it as won,
    not as "the try was reaped"."""
    run_id, message = _first_try(stack)

    def reads_first(request: object) -> bool:
        body = getattr(request, "body", None) or b""
        return b"task-instances" in body and b"first#" in body

    with AwsFaults() as faults:
        faults.ambiguous("dynamodb", "UpdateItem", times=5, when=_records_success)
        faults.refuse("dynamodb", "GetItem", times=5, when=reads_first)
        outcome = stack.run_worker(message)  # type: ignore[arg-type]

    assert outcome.recorded and outcome.state is TaskState.SUCCESS
    assert outcome.dispatched_next == 1
    stack.settle()
    assert stack.store.get_run("chain", run_id).state is DagRunState.SUCCESS
    assert stack.states("chain", run_id) == {"first": "success", "second": "success"}
    assert STARTS == ["first", "second"]


def test_a_hand_off_interrupted_by_aws_is_finished_from_the_stored_state(stack: Stack) -> None:
    """The run counters' settle refused to the end after ``second`` was handed
    off: the worker finishes the hand-off again from what is stored, and the
    two dispatches of ``second`` still start it once."""
    run_id, message = _first_try(stack)

    def settles_run(request: object) -> bool:
        body = getattr(request, "body", None) or b""
        return b"dag-runs" in body

    with AwsFaults() as faults:
        faults.refuse("dynamodb", "TransactWriteItems", times=5, when=settles_run)
        outcome = stack.run_worker(message)  # type: ignore[arg-type]

    assert outcome.recorded and outcome.state is TaskState.SUCCESS
    assert stack.slept == []  # type: ignore[attr-defined]  # finished again at once
    stack.settle()
    assert stack.store.get_run("chain", run_id).state is DagRunState.SUCCESS
    second = stack.store.get_instance("chain", run_id, "second", -1)
    assert second is not None and second.state is TaskState.SUCCESS and second.try_number == 1
    assert STARTS == ["first", "second"]
    # the settle repeated after its refusals counted once
    progress = stack.store.run_progress("chain", run_id)
    assert (progress.total, progress.finished) == (2, 2)


def test_a_step_that_fails_for_a_bug_is_not_repeated(stack: Stack) -> None:
    from chalicelib.runtime.recording import persistently

    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("not AWS")

    with pytest.raises(KeyError):
        persistently(broken, what="testing", label="t", sleep=stack.slept.append)  # type: ignore[attr-defined]
    assert calls == [1] and stack.slept == []  # type: ignore[attr-defined]
