"""Task logs in CloudWatch Logs (moto): a stream per try, written by the worker, read in pages."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.states import DagRunState
from chalicelib.sdk import DAG, task
from chalicelib.store.memory import InMemoryStateStore
from chalicelib.store.settings import StoreSettings
from chalicelib.store.task_logs import TaskLogStore, stream_name
from operators.bash import BashOperator
from tests.scheduler.harness import FakeClock, Stack

GROUP = "/slipstream/test/tasks"


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        TaskLogStore(client, GROUP).create_group()
        yield client


@pytest.fixture
def task_logs(logs: Any) -> TaskLogStore:
    return TaskLogStore(logs, GROUP)


@pytest.fixture
def stack(task_logs: TaskLogStore) -> Stack:
    built = Stack(
        store=InMemoryStateStore(), clock=FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    )
    built.deps.task_logs = task_logs
    return built


def _all_lines(store: TaskLogStore, *key: Any, limit: int = 1000) -> list[dict[str, Any]]:
    lines, token = store.read_try_log(*key, limit=limit)
    while token is not None:
        page, token = store.read_try_log(*key, token=token, limit=limit)
        lines.extend(page)
    return lines


def test_names_follow_airflows_template_without_forbidden_characters() -> None:
    name = stream_name("etl", "manual__2024-01-01T00:00:00+00:00", "load*", 3, 2)
    assert name == (
        "dag_id=etl/run_id=manual__2024-01-01T00_00_00+00_00/task_id=load_"
        "/map_index=3/attempt=2.log"
    )
    assert StoreSettings(stage="prod").task_logs_group == "/slipstream/prod/tasks"
    assert StoreSettings(task_log_group="/custom").task_logs_group == "/custom"


def test_create_group_is_idempotent(task_logs: TaskLogStore) -> None:
    task_logs.create_group()  # the fixture created it already


@pytest.fixture(params=["NOTSET", "WARNING"])
def worker_log_level(request: pytest.FixtureRequest) -> Iterator[None]:
    """The worker's own "slipstream" logger level (powertools sets it from
    POWERTOOLS_LOG_LEVEL, WARNING in prod); a try's log must not depend on it."""
    logger = logging.getLogger("slipstream")
    before = logger.level
    logger.setLevel(request.param)
    yield
    logger.setLevel(before)


@pytest.mark.usefixtures("worker_log_level")
def test_a_try_that_prints_logs_and_runs_bash_writes_its_stream(
    stack: Stack, task_logs: TaskLogStore, logs: Any
) -> None:
    with DAG("chatty") as dag:

        @task
        def talk() -> None:
            print("printed")
            logging.getLogger("user.code").warning("warned")

        talk() >> BashOperator(task_id="shell", bash_command="echo from bash; echo oops >&2")

    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("chatty")
    stack.settle()
    assert stack.store.get_run("chatty", run.run_id).state is DagRunState.SUCCESS

    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert {s["logStreamName"] for s in streams} == {
        stream_name("chatty", run.run_id, tid, -1, 1) for tid in ("talk", "shell")
    }
    talk_lines = _all_lines(task_logs, "chatty", run.run_id, "talk", -1, 1)
    pairs = [(x["event"], x["level"], x["logger"]) for x in talk_lines]
    assert ("printed", "info", "stdout") in pairs
    assert ("warned", "warning", "user.code") in pairs
    assert any(x["logger"] == "slipstream.task" and "SUCCESS" in x["event"] for x in talk_lines)
    shell_events = [x["event"] for x in _all_lines(task_logs, "chatty", run.run_id, "shell", -1, 1)]
    assert "from bash" in shell_events and "oops" in shell_events
    assert all(set(x) == {"timestamp", "event", "level", "logger"} for x in talk_lines)


def test_paging_walks_every_line_once_and_ends_with_no_token(task_logs: TaskLogStore) -> None:
    sink = task_logs.sink("d", "r", "t", -1, 1)
    for i in range(23):
        sink.emit(f"line {i}")
    sink.flush()

    lines, token = task_logs.read_try_log("d", "r", "t", -1, 1, limit=5)
    seen = [x["event"] for x in lines]
    pages = 1
    while token is not None:
        lines, token = task_logs.read_try_log("d", "r", "t", -1, 1, token=token, limit=5)
        seen.extend(x["event"] for x in lines)
        pages += 1
        assert pages < 20
    assert seen == [f"line {i}" for i in range(23)]


def test_a_missing_group_or_stream_reads_empty(task_logs: TaskLogStore, logs: Any) -> None:
    assert task_logs.read_try_log("d", "r", "never", -1, 1, limit=10) == ([], None)
    assert TaskLogStore(logs, "/no/such/group").read_try_log("d", "r", "t", -1, 1) == ([], None)


def test_a_cloudwatch_failure_does_not_fail_the_task(
    stack: Stack, task_logs: TaskLogStore, caplog: pytest.LogCaptureFixture
) -> None:
    with DAG("unlogged") as dag:

        @task
        def work() -> int:
            print("nobody will read this")
            return 1

        work()

    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("unlogged")
    broken = mock.patch.object(
        task_logs.client, "put_log_events", side_effect=RuntimeError("throttled")
    )
    with broken, caplog.at_level(logging.WARNING, logger="slipstream.worker"):
        stack.settle()
    assert stack.store.get_run("unlogged", run.run_id).state is DagRunState.SUCCESS
    assert "throttled" in caplog.text


def test_an_oversize_line_is_stored_split(task_logs: TaskLogStore) -> None:
    sink = task_logs.sink("d", "r", "big", -1, 1)
    text = "x" * 600_000
    sink.emit(text)
    sink.flush()
    lines = _all_lines(task_logs, "d", "r", "big", -1, 1)
    assert len(lines) == 3
    assert "".join(x["event"] for x in lines) == text


def test_a_running_trys_log_is_readable_after_a_heartbeat(
    stack: Stack, task_logs: TaskLogStore
) -> None:
    printed, release, beaten = threading.Event(), threading.Event(), threading.Event()
    with DAG("slow") as dag:

        @task
        def wait_for_the_test() -> None:
            print("halfway")
            printed.set()
            release.wait(30)
            print("done")

        wait_for_the_test()

    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("slow")
    stack.deps.heartbeat_seconds = 0.01
    real_heartbeat = stack.store.heartbeat

    def heartbeat(*args: Any) -> bool:  # the worker flushes the log just before it beats
        alive = real_heartbeat(*args)
        if printed.is_set():
            beaten.set()
        return alive

    stack.store.heartbeat = heartbeat  # type: ignore[method-assign]
    key = ("slow", run.run_id, "wait_for_the_test", -1, 1)
    worker = threading.Thread(target=stack.settle)
    worker.start()
    try:
        assert beaten.wait(30)
        partial = [x["event"] for x in _all_lines(task_logs, *key)]
        assert "halfway" in partial and "done" not in partial
    finally:
        release.set()
        worker.join(30)
    final = [x["event"] for x in _all_lines(task_logs, *key)]
    assert final.count("halfway") == 1 and "done" in final
    assert stack.store.get_run("slow", run.run_id).state is DagRunState.SUCCESS
