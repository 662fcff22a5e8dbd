"""Bodies of the Lambda entry points; app.py only registers them.

Each handler is observable the same way: a powertools Logger with the
dag/run/task/try keys of what it is working on, EMF metrics (runs started,
tries by outcome, scheduling lag), and a Tracer segment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.aws.errors import describe, is_expected_aws_error

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.core.messages import SchedulerMessage
    from chalicelib.scheduler.queue import PoisonMessage

# What only one handler uses (the batch utilities, the queue's message parser,
# the worker's runtime) is imported inside that handler: all four Lambda
# functions import this module, and each cold start pays only for its own
# (bench/cold_start.py). chalicelib.wiring too: its settings models pull in
# pydantic and pydantic-settings, most of a scheduler function's import time,
# which a handler needs only once it builds its adapters on the first call
# (tests/test_handler_import_graph.py).

logger = Logger(service="slipstream")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Slipstream"))


def tracing_enabled() -> bool:
    """X-Ray subsegments from the SDK are opt-in per stage.

    Lambda's own active tracing (``xray`` in ``.chalice/config.json``) traces
    every invocation without any SDK. powertools' Tracer adds a subsegment per
    handler and per AWS call, but importing ``aws_xray_sdk`` costs 0.2-0.5 s
    of every cold start on this machine (bench/cold_start.py), so a stage
    turns it on with ``SLIPSTREAM_XRAY_SDK=true``; ``POWERTOOLS_TRACE_DISABLED``
    still turns it off.
    """
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() == "true":
        return False
    return os.environ.get("SLIPSTREAM_XRAY_SDK", "false").lower() == "true"


@functools.cache
def tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service="slipstream")


def _traced(func: Any) -> Any:
    """powertools' ``capture_method`` when tracing is on, built on first call."""
    traced: list[Any] = []

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not tracing_enabled():
            return func(*args, **kwargs)
        if not traced:
            traced.append(tracer().capture_method(func))
        return traced[0](*args, **kwargs)

    return wrapper


def partial_batch_enabled() -> bool:
    """True only where the SQS event source mapping has ReportBatchItemFailures
    (``chalice package --merge-template infra/chalice-merge.json``, or the local
    stack); otherwise a failed record fails the whole batch, and the idempotent
    handlers redo the rest."""
    return os.environ.get("SLIPSTREAM_PARTIAL_BATCH_RESPONSE", "false").lower() == "true"


class BatchFailed(Exception):
    """Some records of a batch failed and partial batch responses are off."""


def _flushing(func: Any) -> Any:
    """Emit the handler's EMF metrics when it returns or raises (log_metrics
    expects the raw (event, context) signature, which Chalice handlers lack)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            metrics.flush_metrics()

    return wrapper


@contextlib.contextmanager
def _logging_keys(**keys: Any) -> Iterator[None]:
    """Keys of what this thread works on now, and nothing left from before.

    Thread-local (the local stack's poller, tick and API share one process),
    cleared on the way in and on the way out: a record's log lines name only
    its own ids, never the previous record's.
    """
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**{k: v for k, v in keys.items() if v is not None})
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()


def _log_failure(what: str, exc: BaseException) -> None:
    """An expected AWS error (throttling, 5xx, a lost condition) is one line;
    anything else is a bug and keeps its traceback."""
    if is_expected_aws_error(exc):
        logger.warning(f"{what} failed, retried later: {describe(exc)}")
    else:
        logger.exception(f"{what} failed")


@_flushing
@_traced
def schedule_tick() -> dict[str, Any]:
    from chalicelib import wiring

    with _logging_keys():
        report = wiring.scheduler().tick()
    metrics.add_metric(name="RunsCreated", unit=MetricUnit.Count, value=len(report.runs_created))
    metrics.add_metric(name="TriesReaped", unit=MetricUnit.Count, value=len(report.tries_reaped))
    metrics.add_metric(name="TickFailures", unit=MetricUnit.Count, value=len(report.failures))
    logger.info(
        "tick",
        extra={
            "runs_created": report.runs_created,
            "reaped": report.tries_reaped,
            "failures": report.failures,
        },
    )
    return {
        "runs_created": report.runs_created,
        "tries_reaped": report.tries_reaped,
        "failures": report.failures,
    }


def _scheduler_record(record: SQSRecord) -> None:
    """One record; raising marks only this record failed (it comes back later)."""
    from chalicelib.scheduler.queue import PoisonMessage, message_ids, parse_body

    try:
        parsed = parse_body(record.body)
    except PoisonMessage as poison:
        with _logging_keys(message_id=record.message_id, **poison.ids):
            _reject(record, poison)
        return
    if isinstance(parsed, dict):
        payload = parsed.get("requestPayload")
        keys: dict[str, Any] = (
            {k: payload.get(k) for k in ("dag_id", "run_id", "task_id", "try_number")}
            if isinstance(payload, dict)
            else {"event_id": parsed.get("id"), "event_source": parsed.get("source")}
        )
    else:
        keys = message_ids(parsed)
    with _logging_keys(message_id=record.message_id, **keys):
        try:
            _handle_record(record, parsed)
        except Exception as exc:
            _log_failure("scheduler message", exc)
            raise


def _handle_record(record: SQSRecord, parsed: SchedulerMessage | dict[str, Any]) -> None:
    from chalicelib import wiring

    if isinstance(parsed, dict) and "requestPayload" in parsed:
        from chalicelib.scheduler.invoke_failures import reconcile_invoke_failure

        failed = reconcile_invoke_failure(wiring.scheduler(), parsed)
        metrics.add_metric(name="WorkerInvokeFailures", unit=MetricUnit.Count, value=int(failed))
        return
    from chalicelib.scheduler.container_stops import is_task_stopped

    if is_task_stopped(parsed):
        from chalicelib.scheduler.container_stops import reconcile_stopped_task

        failed = reconcile_stopped_task(wiring.scheduler(), parsed)
        metrics.add_metric(name="WorkerContainersDied", unit=MetricUnit.Count, value=int(failed))
        return
    if isinstance(parsed, dict):
        created = wiring.event_router().route(parsed)
        metrics.add_metric(name="EventRuns", unit=MetricUnit.Count, value=len(created))
        return
    sent = record.attributes.sent_timestamp
    if sent:
        lag = dt.datetime.now(dt.UTC).timestamp() - int(sent) / 1000
        metrics.add_metric(name="SchedulingLag", unit=MetricUnit.Seconds, value=max(0.0, lag))
    wiring.scheduler().handle(parsed)
    if parsed.type == "run_created":
        metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)


def _reject(record: SQSRecord, poison: PoisonMessage) -> None:
    """Rejected once, with one line: straight to the dead-letter queue, since no
    retry can change the answer. Without a dead-letter queue it stays failing
    (the redrive policy, where there is one, still bounds it)."""
    from chalicelib import wiring

    metrics.add_metric(name="PoisonMessages", unit=MetricUnit.Count, value=1)
    try:
        moved = wiring.dead_letters().send(record.body, poison.reason, record.message_id)
    except Exception as exc:
        _log_failure(f"poison message {record.message_id} ({poison.reason}): moving it", exc)
        raise
    if not moved:
        logger.error(
            f"poison message {record.message_id} rejected: {poison.reason}; "
            "the queue has no dead-letter queue, so it stays until its retention ends"
        )
        raise poison
    logger.error(
        f"poison message {record.message_id} rejected: {poison.reason}; "
        "moved to the dead-letter queue"
    )


@_flushing
@_traced
def scheduler_queue(raw_event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Each record on its own (powertools' BatchProcessor): a failed one is
    reported alone in ``batchItemFailures`` and never holds up the others."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    partial = partial_batch_enabled()
    # With partial responses on, a batch whose records all failed is answered
    # as such too (SQS retries exactly those), not raised with a traceback.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=not partial)
    try:
        response = process_partial_response(
            event=raw_event,
            record_handler=_scheduler_record,
            processor=processor,
            context=context,
        )
    except BatchProcessingError as exc:  # every record failed, and no partial responses
        count = len(raw_event.get("Records", []))
        raise BatchFailed(f"{count} scheduler messages failed; the batch is retried") from exc
    failures = response.get("batchItemFailures", [])
    if failures and not partial:
        raise BatchFailed(f"{len(failures)} scheduler messages failed; the batch is retried")
    return response


@_flushing
@_traced
def run_worker(event: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.core.messages import WorkerMessage
    from chalicelib.runtime.worker import handle_worker_message

    message = WorkerMessage.model_validate(event)
    with _logging_keys(
        dag_id=message.dag_id,
        run_id=message.run_id,
        task_id=message.task_id,
        map_index=message.map_index,
        try_number=message.try_number,
    ):
        outcome = handle_worker_message(message)
    if outcome.state is not None:
        metrics.add_metric(name=f"Tries_{outcome.state.value}", unit=MetricUnit.Count, value=1)
    return {
        "claimed": outcome.claimed,
        "state": None if outcome.state is None else outcome.state.value,
        "recorded": outcome.recorded,
        "dispatched_next": outcome.dispatched_next,
    }
