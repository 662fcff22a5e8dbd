"""Lambda's on-failure records are told apart from scheduler messages and events."""

from __future__ import annotations

import json

from chalicelib.scheduler.invoke_failures import failure_reason, is_invoke_failure, worker_message
from chalicelib.scheduler.queue import parse_body

TRY = {"dag_id": "d", "run_id": "r", "task_id": "t", "try_number": 2, "version": "v"}
RECORD = {
    "version": "1.0",
    "requestContext": {"requestId": "x", "condition": "RetriesExhausted"},
    "requestPayload": TRY,
    "responsePayload": {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"},
}


def test_a_failure_record_parses_as_itself() -> None:
    parsed = parse_body(json.dumps(RECORD))
    assert isinstance(parsed, dict) and is_invoke_failure(parsed)
    assert not is_invoke_failure({"source": "aws.s3", "detail-type": "Object Created"})


def test_the_reason_says_what_lambda_said() -> None:
    assert failure_reason(RECORD) == (
        "worker Lambda invoke failed (RetriesExhausted): Sandbox.Timedout: Task timed out"
    )
    assert failure_reason({"requestContext": {"condition": "EventAgeExceeded"}}) == (
        "worker Lambda invoke failed (EventAgeExceeded)"
    )


def test_the_try_comes_from_the_original_payload() -> None:
    message = worker_message(RECORD)
    assert message is not None and (message.task_id, message.try_number) == ("t", 2)
    assert worker_message({**RECORD, "requestPayload": {"not": "a try"}}) is None
