"""What happens after a failed try: retry later, or fail for good.

``next_retry_datetime`` follows Airflow's TaskInstance.next_retry_datetime to
the second, including its deterministic per-try jitter, so a DAG moved from
Airflow retries at the same moments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from chalicelib.core.spec import TaskSpec
from chalicelib.core.states import TaskState

MAX_RETRY_DELAY_SECONDS = 24 * 60 * 60

MAX_INFRASTRUCTURE_RETRIES = 5
"""Tries of one instance (since its last clear) that an infrastructure failure
may end without counting against the task's ``retries``. Past it, an
infrastructure failure counts like any other, so a permanently broken
environment ends the task after ``retries + 1 + MAX_INFRASTRUCTURE_RETRIES``
tries instead of retrying it forever."""

INFRASTRUCTURE_RETRY_SECONDS = 15.0
INFRASTRUCTURE_RETRY_MAX_SECONDS = 600.0


@dataclass(frozen=True)
class RetryDecision:
    state: TaskState  # UP_FOR_RETRY or FAILED
    next_try_at: dt.datetime | None
    delay_seconds: float | None


def retry_delay_seconds(
    task: TaskSpec, *, dag_id: str, logical_date: dt.datetime | None, try_number: int
) -> float:
    """The wait after try ``try_number`` (1-based) fails."""
    delay = task.retry_delay
    if task.retry_exponential_backoff:
        min_backoff = max(1, math.ceil(delay * (2 ** (try_number - 1))))
        seed = f"{dag_id}#{task.task_id}#{logical_date}#{try_number}"
        ti_hash = int(hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest(), 16)
        modded = min_backoff + ti_hash % min_backoff
        delay = float(min(modded, MAX_RETRY_DELAY_SECONDS))
    if task.max_retry_delay is not None:
        delay = min(delay, task.max_retry_delay)
    return delay


def next_retry_datetime(
    task: TaskSpec,
    *,
    dag_id: str,
    logical_date: dt.datetime | None,
    try_number: int,
    failed_at: dt.datetime,
) -> dt.datetime:
    delay = retry_delay_seconds(
        task, dag_id=dag_id, logical_date=logical_date, try_number=try_number
    )
    return failed_at + dt.timedelta(seconds=delay)


def decide_after_failure(
    task: TaskSpec,
    *,
    dag_id: str,
    logical_date: dt.datetime | None,
    try_number: int,
    failed_at: dt.datetime,
    non_retryable: bool = False,
    retry_base: int = 0,
) -> RetryDecision:
    """Airflow retries while ``try_number <= retries``: ``retries + 1`` tries in all,
    counted from the last clear (``retry_base`` tries came before it)."""
    tries = try_number - retry_base
    if non_retryable or tries > task.retries:
        return RetryDecision(TaskState.FAILED, None, None)
    delay = retry_delay_seconds(task, dag_id=dag_id, logical_date=logical_date, try_number=tries)
    return RetryDecision(TaskState.UP_FOR_RETRY, failed_at + dt.timedelta(seconds=delay), delay)


@dataclass(frozen=True)
class InfrastructureDecision:
    retry: RetryDecision
    counted: bool  # False: the try is not charged to the user's retries


def decide_after_infrastructure_failure(
    task: TaskSpec,
    *,
    dag_id: str,
    logical_date: dt.datetime | None,
    try_number: int,
    failed_at: dt.datetime,
    retry_base: int = 0,
    infra_failures: int = 0,
) -> InfrastructureDecision:
    """After a try that AWS (not the task's code) failed: retry it later without
    charging the user's retries, with a backoff of 15 s doubling up to 10 min
    (the environment needs time to recover), while fewer than
    MAX_INFRASTRUCTURE_RETRIES such tries happened; past that, it counts."""
    if infra_failures < MAX_INFRASTRUCTURE_RETRIES:
        delay = min(
            INFRASTRUCTURE_RETRY_SECONDS * 2**infra_failures, INFRASTRUCTURE_RETRY_MAX_SECONDS
        )
        retry = RetryDecision(
            TaskState.UP_FOR_RETRY, failed_at + dt.timedelta(seconds=delay), delay
        )
        return InfrastructureDecision(retry, counted=False)
    decision = decide_after_failure(
        task,
        dag_id=dag_id,
        logical_date=logical_date,
        try_number=try_number,
        failed_at=failed_at,
        retry_base=retry_base,
    )
    return InfrastructureDecision(decision, counted=True)
