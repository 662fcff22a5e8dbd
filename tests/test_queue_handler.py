"""The scheduler queue's handler under bad input and AWS faults: poison is
rejected once to the dead-letter queue, one record's failure is only its own,
expected AWS errors are one log line, and log keys never outlive their record.

Records go straight to ``handlers.scheduler_queue`` as Lambda would hand them
(the local stack's record shape); the scheduler behind it is a recorder, so
what is tested is the handler, not the engine.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib import handlers, wiring
from chalicelib.core.messages import RunCreated, SchedulerMessage
from chalicelib.local.resources import create_scheduler_queue, sqs_record
from chalicelib.scheduler.queue import MAX_RECEIVE_COUNT

QUEUE = "slipstream-qtest-scheduler"
scheduler_log = logging.getLogger("slipstream.scheduler")


class RecordingScheduler:
    """Handles a message by logging it; run ids in ``fail`` raise what they map to."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.fail: dict[str, Exception] = {}

    def handle(self, message: SchedulerMessage) -> None:
        scheduler_log.warning("handling %s", message.run_id)
        if message.run_id in self.fail:
            raise self.fail[message.run_id]
        self.handled.append(message.run_id)


class RecordingRouter:
    def __init__(self) -> None:
        self.routed: list[str] = []

    def route(self, event: dict[str, Any]) -> list[str]:
        scheduler_log.warning("routing event %s", event["id"])
        self.routed.append(event["id"])
        return []


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, RecordingScheduler]]:
    monkeypatch.setenv("SLIPSTREAM_QUEUE_NAME", QUEUE)
    monkeypatch.setenv("SLIPSTREAM_PARTIAL_BATCH_RESPONSE", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    wiring.reset()
    with mock_aws():
        url = create_scheduler_queue(wiring.client("sqs"), QUEUE)
        monkeypatch.setenv("SLIPSTREAM_QUEUE_URL", url)
        scheduler = RecordingScheduler()
        wiring.install_scheduler(scheduler)  # type: ignore[arg-type]
        router = RecordingRouter()
        monkeypatch.setattr(wiring, "event_router", lambda: router)
        yield url, scheduler
    wiring.reset()


def _event(url: str, *bodies: str) -> dict[str, Any]:
    messages = [
        {"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": body}
        for i, body in enumerate(bodies)
    ]
    return {"Records": [sqs_record(m, url) for m in messages]}


def _created(run_id: str, dag_id: str = "d") -> str:
    return RunCreated(dag_id=dag_id, run_id=run_id).model_dump_json()


class JsonLog:
    """The powertools Logger's JSON lines, as CloudWatch would get them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        text, self.stream = self.stream.getvalue(), io.StringIO()
        handler.setStream(self.stream)
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


handler = handlers.logger.registered_handler


@pytest.fixture
def log() -> Iterator[JsonLog]:
    captured = JsonLog()
    previous = handler.setStream(captured.stream)
    try:
        yield captured
    finally:
        handler.setStream(previous)


def _dead_letters(url: str) -> list[dict[str, Any]]:
    sqs = wiring.client("sqs")
    dlq = sqs.get_queue_url(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    return sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])


def _throttled(operation: str = "GetItem") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


POISON = {
    "not JSON": "not json at all",
    "wrong shape": json.dumps({"type": "run_created", "dag_id": "d2"}),  # no run_id
    "unknown kind": json.dumps({"type": "nonsense", "dag_id": "d3", "run_id": "r3"}),
    "not an object": "[1, 2]",
    "event without id": json.dumps({"source": "aws.s3", "detail-type": "Object Created"}),
}


def test_poison_is_rejected_once_to_the_dead_letter_queue_and_blocks_nothing(
    queue: tuple[str, RecordingScheduler], log: JsonLog
) -> None:
    url, scheduler = queue
    bodies = [_created("r1"), *POISON.values(), _created("r2")]

    response = handlers.scheduler_queue(_event(url, *bodies))

    assert response == {"batchItemFailures": []}  # nothing comes back to fail again
    assert scheduler.handled == ["r1", "r2"]
    moved = _dead_letters(url)
    assert sorted(m["Body"] for m in moved) == sorted(POISON.values())
    reasons = [m["MessageAttributes"]["RejectedReason"]["StringValue"] for m in moved]
    assert all(reasons)
    rejected = [line for line in log.lines() if "poison message" in line["message"]]
    assert len(rejected) == len(POISON)  # one line each
    assert all(line["level"] == "ERROR" and "exception" not in line for line in rejected)
    by_message = {line["message_id"]: line for line in rejected}
    assert "dag_id" not in by_message["m1"]  # not JSON: no ids of its own, and no one else's
    assert (by_message["m2"]["dag_id"], by_message["m2"].get("run_id")) == ("d2", None)
    assert (by_message["m3"]["dag_id"], by_message["m3"]["run_id"]) == ("d3", "r3")


def test_log_keys_never_outlive_their_record(
    queue: tuple[str, RecordingScheduler], log: JsonLog
) -> None:
    url, _ = queue
    envelope = json.dumps({"id": "ev1", "source": "custom", "detail-type": "x", "detail": {}})

    handlers.scheduler_queue(_event(url, _created("r1", "dag_a"), envelope))
    handlers.scheduler_queue(_event(url, "garbage"))

    lines = log.lines()
    routed = next(line for line in lines if line["message"] == "routing event ev1")
    assert "dag_id" not in routed and "run_id" not in routed
    assert routed["event_id"] == "ev1"
    poison = next(line for line in lines if "poison message" in line["message"])
    assert not {"dag_id", "run_id", "event_id"} & set(poison)
    assert handlers.logger.get_current_keys().get("dag_id") is None
    assert handlers.logger.thread_safe_get_current_keys() == {}


def test_one_failed_record_is_reported_alone_and_an_aws_error_is_one_line(
    queue: tuple[str, RecordingScheduler], log: JsonLog
) -> None:
    url, scheduler = queue
    scheduler.fail["r2"] = _throttled()
    scheduler.fail["r3"] = ZeroDivisionError("a bug")

    response = handlers.scheduler_queue(
        _event(url, _created("r1"), _created("r2"), _created("r3"), _created("r4"))
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert scheduler.handled == ["r1", "r4"]
    failed = {line["run_id"]: line for line in log.lines() if "failed" in line["message"]}
    assert set(failed) == {"r2", "r3"}
    assert "exception" not in failed["r2"]  # throttling: expected, one line
    assert "ProvisionedThroughputExceededException" in failed["r2"]["message"]
    assert "ZeroDivisionError" in failed["r3"]["exception"]  # a bug keeps its traceback


def test_a_batch_whose_records_all_failed_is_answered_not_raised(
    queue: tuple[str, RecordingScheduler], log: JsonLog
) -> None:
    url, scheduler = queue
    scheduler.fail["r1"] = _throttled()

    response = handlers.scheduler_queue(_event(url, _created("r1")))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert not any("exception" in line for line in log.lines())


def test_without_partial_responses_a_failed_record_still_fails_the_batch(
    queue: tuple[str, RecordingScheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, scheduler = queue
    monkeypatch.setenv("SLIPSTREAM_PARTIAL_BATCH_RESPONSE", "false")
    scheduler.fail["r1"] = _throttled()

    with pytest.raises(handlers.BatchFailed):
        handlers.scheduler_queue(_event(url, _created("r1"), _created("r2")))


def test_the_queue_redrives_a_message_that_keeps_failing(queue: tuple[str, Any]) -> None:
    """moto plays SQS's redrive: after MAX_RECEIVE_COUNT receives, the DLQ has it."""
    url, _ = queue
    sqs = wiring.client("sqs")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    sqs.send_message(QueueUrl=url, MessageBody="keeps failing")
    receives = 0
    while sqs.receive_message(QueueUrl=url).get("Messages"):
        receives += 1
        assert receives <= MAX_RECEIVE_COUNT
    assert receives == MAX_RECEIVE_COUNT
    assert [m["Body"] for m in _dead_letters(url)] == ["keeps failing"]


def test_a_stopped_ecs_task_event_reconciles_its_try_and_is_not_routed(
    queue: tuple[str, RecordingScheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.scheduler import container_stops

    url, scheduler = queue
    reconciled: list[str] = []

    def reconcile(given: Any, event: dict[str, Any]) -> bool:
        assert given is scheduler
        reconciled.append(event["detail"]["taskArn"])
        return True

    monkeypatch.setattr(container_stops, "reconcile_stopped_task", reconcile)
    stopped = {
        "id": "e1",
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/t1", "lastStatus": "STOPPED"},
    }
    running = {**stopped, "id": "e2", "detail": {**stopped["detail"], "lastStatus": "RUNNING"}}
    response = handlers.scheduler_queue(_event(url, json.dumps(stopped), json.dumps(running)))
    assert response == {"batchItemFailures": []}
    assert reconciled == ["arn:aws:ecs:us-east-1:1:task/c/t1"]
    assert wiring.event_router().routed == ["e2"]  # type: ignore[attr-defined]
