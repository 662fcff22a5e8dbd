"""ECS "Task State Change" events of stopped worker containers reconcile their try.

The infra stack's WorkerTaskStoppedRule sends every STOPPED task of the worker
cluster to the scheduler queue. A container that dies before its worker records
an outcome (out of memory, a non-zero exit, a Fargate Spot interruption, an
image that would not pull) would otherwise wait for the reaper's heartbeat
timeout; here its try fails at once with ECS's reason, through the same path as
a lost worker (``Scheduler.fail_lost_try``), so its retries apply.

The event names its try through the task's own overrides: the executor puts the
worker message in the container's environment (ecs_executor.WORKER_MESSAGE_ENV).
A try that already recorded its outcome, a later try of the same task, a
redelivered event and a task Slipstream did not start change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.states import TaskState
from chalicelib.executors.ecs_executor import WORKER_MESSAGE_ENV
from chalicelib.store.base import RunNotFound

log = logging.getLogger("slipstream.scheduler")

_UNFINISHED = (TaskState.QUEUED, TaskState.RUNNING)


def is_task_stopped(event: Any) -> bool:
    """An EventBridge "ECS Task State Change" event of a STOPPED task."""
    if not isinstance(event, Mapping):
        return False
    detail = event.get("detail")
    return (
        event.get("source") == "aws.ecs"
        and event.get("detail-type") == "ECS Task State Change"
        and isinstance(detail, Mapping)
        and detail.get("lastStatus") == "STOPPED"
    )


def stopped_try(detail: Mapping[str, Any]) -> WorkerMessage | None:
    """The try whose message the task carried in its overrides; None for a task
    Slipstream did not start (or one started without a worker message)."""
    overrides = detail.get("overrides") or {}
    for container in overrides.get("containerOverrides") or []:
        for variable in container.get("environment") or []:
            if variable.get("name") != WORKER_MESSAGE_ENV:
                continue
            try:
                return WorkerMessage.model_validate_json(str(variable.get("value", "")))
            except ValidationError:
                return None
    return None


def stop_reason(detail: Mapping[str, Any]) -> str:
    """One line for the try's error: ECS's stop reason, the container's own
    reason (OutOfMemoryError, CannotPullContainerError) and its exit code."""
    parts = [str(detail.get("stoppedReason") or detail.get("stopCode") or "stopped")]
    containers = list(detail.get("containers") or [])
    exit_codes = [c.get("exitCode") for c in containers if c.get("exitCode") is not None]
    parts += [str(c["reason"]) for c in containers if c.get("reason")]
    if exit_codes:
        parts.append("exit code " + ", ".join(str(code) for code in exit_codes))
    return "ECS task stopped: " + "; ".join(parts)


def reconcile_stopped_task(scheduler: Any, event: Mapping[str, Any]) -> bool:
    """Fail the stopped task's try if it is still that try and unfinished;
    True when it changed something. Idempotent like every queue handler."""
    detail = event.get("detail") or {}
    message = stopped_try(detail)
    task_arn = detail.get("taskArn")
    if message is None:
        log.info("stopped ECS task %s carries no Slipstream try; ignored", task_arn)
        return False
    try:
        ti = scheduler.store.get_instance(
            message.dag_id, message.run_id, message.task_id, message.map_index
        )
    except RunNotFound:  # a deleted run, or a container of another stage's cluster
        log.info(
            "stopped ECS task %s belongs to no run here (%s); ignored", task_arn, message.label
        )
        return False
    if ti is None or ti.try_number != message.try_number or ti.state not in _UNFINISHED:
        return False  # the worker recorded its outcome, or a later try runs now
    if ti.external_executor_id and task_arn and ti.external_executor_id != task_arn:
        return False  # a second container of the same try stopped; the first still runs it
    reason = stop_reason(detail)
    changed: bool = scheduler.fail_lost_try(message.dag_id, message.run_id, ti, reason)
    if changed:
        log.warning("%s failed: %s", message.label, reason)
    return changed
