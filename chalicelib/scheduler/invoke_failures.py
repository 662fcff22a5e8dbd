"""A worker invoke that failed inside Lambda, reported back as a failure record.

The worker Lambda is invoked asynchronously with no Lambda retries
(``MaximumRetryAttempts: 0``: Slipstream's retries decide) and an on-failure
destination on the scheduler queue (stage wiring's merge template). When the
function crashes, times out at 900 s or runs out of memory before recording
the try, Lambda puts a record on that queue holding the original event; this
module fails that try with Lambda's reason instead of leaving it to the
reaper's stale-heartbeat timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.states import TaskState

_UNFINISHED = (TaskState.QUEUED, TaskState.RUNNING)


def is_invoke_failure(document: Any) -> bool:
    """A Lambda destination record (``requestContext`` + ``requestPayload``)."""
    return (
        isinstance(document, Mapping)
        and isinstance(document.get("requestContext"), Mapping)
        and "condition" in document["requestContext"]
        and "requestPayload" in document
    )


def failure_reason(record: Mapping[str, Any]) -> str:
    """What Lambda said went wrong, in one line for the try's failure."""
    context = record.get("requestContext") or {}
    response = record.get("responsePayload")
    detail = ""
    if isinstance(response, Mapping):
        kind, text = response.get("errorType"), response.get("errorMessage")
        detail = ": ".join(str(part) for part in (kind, text) if part)
    condition = context.get("condition", "unknown")
    return f"worker Lambda invoke failed ({condition}){': ' + detail if detail else ''}"


def worker_message(record: Mapping[str, Any]) -> WorkerMessage | None:
    """The try the failed invoke carried; None when the payload was not a try."""
    try:
        return WorkerMessage.model_validate(record.get("requestPayload"))
    except ValidationError:
        return None


def reconcile_invoke_failure(scheduler: Any, record: Mapping[str, Any]) -> bool:
    """Fail the record's try if it is still that try and unfinished; idempotent:
    a second delivery, or a try the worker did record, changes nothing."""
    message = worker_message(record)
    if message is None:
        return False
    ti = scheduler.store.get_instance(
        message.dag_id, message.run_id, message.task_id, message.map_index
    )
    if ti is None or ti.try_number != message.try_number or ti.state not in _UNFINISHED:
        return False
    changed: bool = scheduler.fail_lost_try(
        message.dag_id, message.run_id, ti, failure_reason(record)
    )
    return changed
