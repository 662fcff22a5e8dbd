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
