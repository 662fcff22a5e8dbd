"""Bodies of the Lambda entry points; app.py only registers them.

Each handler is observable the same way: a powertools Logger with the
dag/run/task/try keys of what it is working on, EMF metrics (runs started,
tries by outcome, scheduling lag), and a Tracer segment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import wiring
from chalicelib.core.messages import TaskFinishedMessage, WorkerMessage
from chalicelib.scheduler.event_router import is_event_envelope
from chalicelib.scheduler.queue import decode

logger = Logger(service="slipstream")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Slipstream"))
tracer = Tracer(service="slipstream")


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
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            metrics.flush_metrics()

    return wrapper


@_flushing
@tracer.capture_method
def schedule_tick() -> dict[str, Any]:
    report = wiring.scheduler().tick()
    metrics.add_metric(name="RunsCreated", unit=MetricUnit.Count, value=len(report.runs_created))
    metrics.add_metric(name="TriesReaped", unit=MetricUnit.Count, value=len(report.tries_reaped))
    logger.info("tick", extra={"runs_created": report.runs_created, "reaped": report.tries_reaped})
    return {"runs_created": report.runs_created, "tries_reaped": report.tries_reaped}


def _scheduler_record(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if is_event_envelope(body):
        created = wiring.event_router().route(body)
        metrics.add_metric(name="EventRuns", unit=MetricUnit.Count, value=len(created))
        return
    message = decode(record.body)
    logger.append_keys(dag_id=message.dag_id, run_id=message.run_id)
    if isinstance(message, TaskFinishedMessage):
        logger.append_keys(task_id=message.task_id, try_number=message.try_number)
    sent = record.attributes.sent_timestamp
    if sent:
        lag = dt.datetime.now(dt.UTC).timestamp() - int(sent) / 1000
        metrics.add_metric(name="SchedulingLag", unit=MetricUnit.Seconds, value=max(0.0, lag))
    wiring.scheduler().handle(message)
    if message.type == "run_created":
        metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)


@_flushing
@tracer.capture_method
def scheduler_queue(raw_event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)
    try:
        response = process_partial_response(
            event=raw_event,
            record_handler=_scheduler_record,
            processor=processor,
            context=context,
        )
    except BatchProcessingError as exc:  # powertools raises when every record failed
        count = len(raw_event.get("Records", []))
        raise BatchFailed(f"{count} scheduler messages failed; the batch is retried") from exc
    failures = response.get("batchItemFailures", [])
    if failures and not partial_batch_enabled():
        raise BatchFailed(f"{len(failures)} scheduler messages failed; the batch is retried")
    return response


@_flushing
@tracer.capture_method
def run_worker(event: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.runtime.worker import handle_worker_message

    message = WorkerMessage.model_validate(event)
    logger.append_keys(
        dag_id=message.dag_id,
        run_id=message.run_id,
        task_id=message.task_id,
        map_index=message.map_index,
        try_number=message.try_number,
    )
    outcome = handle_worker_message(message)
    if outcome.state is not None:
        metrics.add_metric(name=f"Tries_{outcome.state.value}", unit=MetricUnit.Count, value=1)
    return {
        "claimed": outcome.claimed,
        "state": None if outcome.state is None else outcome.state.value,
        "recorded": outcome.recorded,
        "dispatched_next": outcome.dispatched_next,
    }
