"""The local stack's plumbing threads survive AWS faults: the queue poller and
the tick log one line and carry on, whatever AWS answers.

Only the threads are run (on in-process moto, with a recording scheduler);
they are awaited on the stack's own notifications, never on a sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib import wiring
from chalicelib.core.messages import RunCreated, SchedulerMessage
from chalicelib.local.stack import LocalStack, create_scheduler_queue
from tests.aws_faults import AwsFaults

QUEUE = "slipstream-pollertest-scheduler"


class RecordingScheduler:
    def __init__(self) -> None:
        self.handled: list[str] = []

    def handle(self, message: SchedulerMessage) -> None:
        self.handled.append(message.run_id)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalStack, RecordingScheduler]]:
    monkeypatch.setenv("SLIPSTREAM_PARTIAL_BATCH_RESPONSE", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    wiring.reset()
    with mock_aws():
        url = create_scheduler_queue(wiring.client("sqs"), QUEUE)
        monkeypatch.setenv("SLIPSTREAM_QUEUE_URL", url)
        scheduler = RecordingScheduler()
        wiring.install_scheduler(scheduler)  # type: ignore[arg-type]
        local = LocalStack(tick_seconds=3600)
        try:
            yield local, scheduler
        finally:
            local._stop.set()
            for thread in local._threads:
                thread.join(timeout=10)
    wiring.reset()


def _start(local: LocalStack, target_name: str) -> None:
    import threading

    thread = threading.Thread(target=getattr(local, target_name), daemon=True)
    thread.start()
    local._threads.append(thread)


def _send(run_id: str) -> None:
    wiring.client("sqs").send_message(
        QueueUrl=wiring.RuntimeSettings().queue_url,
        MessageBody=RunCreated(dag_id="d", run_id=run_id).model_dump_json(),
    )


def test_the_poller_survives_a_delete_that_fails_after_every_retry(
    stack: tuple[LocalStack, RecordingScheduler], caplog: pytest.LogCaptureFixture
) -> None:
    local, scheduler = stack
    caplog.set_level(logging.WARNING, logger="slipstream.local")
    with AwsFaults() as faults:
        faults.refuse("sqs", "DeleteMessageBatch", times=5)  # all 5 attempts of one call
        _send("r1")
        _start(local, "_poll_queue")
        local.wait_until(lambda: "r1" in scheduler.handled or None, 30, "r1 handled")
        _send("r2")
        local.wait_until(lambda: "r2" in scheduler.handled or None, 30, "r2 handled")

    assert all(thread.is_alive() for thread in local._threads)
    assert faults.count("sqs", "DeleteMessageBatch") >= 5
    failed = [r for r in caplog.records if "DeleteMessageBatch" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is None  # one line, no traceback


def test_the_poller_survives_receives_that_fail(
    stack: tuple[LocalStack, RecordingScheduler], caplog: pytest.LogCaptureFixture
) -> None:
    local, scheduler = stack
    with AwsFaults() as faults:
        faults.server_error("sqs", "ReceiveMessage", times=10)  # two whole calls
        _send("r1")
        _start(local, "_poll_queue")
        local.wait_until(lambda: "r1" in scheduler.handled or None, 30, "r1 handled")
    failed = [r for r in caplog.records if "ReceiveMessage" in r.getMessage()]
    assert len(failed) == 2 and all(r.exc_info is None for r in failed)


def test_the_tick_thread_logs_an_aws_error_in_one_line_and_ticks_again(
    stack: tuple[LocalStack, RecordingScheduler],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib import handlers

    local, _ = stack
    local.tick_seconds = 0.001
    ticks: list[int] = []

    def schedule_tick() -> dict[str, list[str]]:
        ticks.append(1)
        if len(ticks) == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "Query")
        if len(ticks) == 2:
            raise KeyError("a bug")
        return {}

    monkeypatch.setattr(handlers, "schedule_tick", schedule_tick)
    _start(local, "_tick")
    local.wait_until(lambda: len(ticks) >= 3 or None, 30, "three ticks")
    local._stop.set()
    failed = [r for r in caplog.records if "tick" in r.getMessage()]
    assert failed[0].exc_info is None and "ThrottlingException" in failed[0].getMessage()
    assert failed[1].exc_info is not None  # a bug keeps its traceback
