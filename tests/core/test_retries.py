"""Retry timing matches Airflow's TaskInstance.next_retry_datetime."""

from __future__ import annotations

import datetime as dt
import hashlib

from chalicelib.core.retries import (
    MAX_RETRY_DELAY_SECONDS,
    decide_after_failure,
    retry_delay_seconds,
)
from chalicelib.core.spec import TaskSpec
from chalicelib.core.states import TaskState

LOGICAL = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
FAILED_AT = dt.datetime(2024, 3, 1, 0, 10, tzinfo=dt.UTC)


def task(**kw) -> TaskSpec:
    return TaskSpec(task_id="load", operator="x.Y", **kw)


def test_fixed_delay() -> None:
    t = task(retries=2, retry_delay=60)
    d = decide_after_failure(
        t, dag_id="etl", logical_date=LOGICAL, try_number=1, failed_at=FAILED_AT
    )
    assert d.state is TaskState.UP_FOR_RETRY
    assert d.next_try_at == FAILED_AT + dt.timedelta(seconds=60)


def test_retries_plus_one_tries_in_all() -> None:
    t = task(retries=2, retry_delay=1)
    states = [
        decide_after_failure(
            t, dag_id="etl", logical_date=LOGICAL, try_number=n, failed_at=FAILED_AT
        ).state
        for n in (1, 2, 3)
    ]
    assert states == [TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RETRY, TaskState.FAILED]


def test_non_retryable_fails_at_once() -> None:
    t = task(retries=5)
    d = decide_after_failure(
        t, dag_id="etl", logical_date=LOGICAL, try_number=1, failed_at=FAILED_AT, non_retryable=True
    )
    assert d.state is TaskState.FAILED and d.next_try_at is None


def _airflow_formula(delay: float, dag_id: str, task_id: str, logical, try_number: int) -> int:
    # Written out from Airflow's documented algorithm, independently of the module.
    import math

    min_backoff = math.ceil(delay * 2 ** (try_number - 1))
    min_backoff = max(min_backoff, 1)
    h = int(hashlib.sha1(f"{dag_id}#{task_id}#{logical}#{try_number}".encode()).hexdigest(), 16)
    return min(min_backoff + h % min_backoff, 86400)


def test_exponential_backoff_with_deterministic_jitter() -> None:
    t = task(retries=10, retry_delay=10, retry_exponential_backoff=True)
    delays = [
        retry_delay_seconds(t, dag_id="etl", logical_date=LOGICAL, try_number=n)
        for n in range(1, 7)
    ]
    expected = [_airflow_formula(10, "etl", "load", LOGICAL, n) for n in range(1, 7)]
    assert delays == expected
    for n, d in enumerate(delays, start=1):
        low = 10 * 2 ** (n - 1)
        assert low <= d < 2 * low  # between delay*2^(n-1) and twice that
    # deterministic: same inputs, same delay
    assert delays == [
        retry_delay_seconds(t, dag_id="etl", logical_date=LOGICAL, try_number=n)
        for n in range(1, 7)
    ]


def test_known_value() -> None:
    # sha1("etl#load#2024-03-01 00:00:00+00:00#3") mod 40, plus 40
    t = task(retry_delay=10, retry_exponential_backoff=True)
    seed = "etl#load#2024-03-01 00:00:00+00:00#3"
    h = int(hashlib.sha1(seed.encode()).hexdigest(), 16)
    assert retry_delay_seconds(t, dag_id="etl", logical_date=LOGICAL, try_number=3) == 40 + h % 40


def test_max_retry_delay_caps_backoff() -> None:
    t = task(retry_delay=60, retry_exponential_backoff=True, max_retry_delay=300)
    assert retry_delay_seconds(t, dag_id="etl", logical_date=LOGICAL, try_number=8) == 300


def test_zero_delay_backoff_waits_at_least_one_second() -> None:
    t = task(retry_delay=0, retry_exponential_backoff=True)
    assert retry_delay_seconds(t, dag_id="etl", logical_date=LOGICAL, try_number=1) == 1


def test_backoff_is_capped_at_a_day() -> None:
    t = task(retry_delay=3600, retry_exponential_backoff=True)
    assert retry_delay_seconds(t, dag_id="etl", logical_date=LOGICAL, try_number=40) == (
        MAX_RETRY_DELAY_SECONDS
    )


def test_infrastructure_failures_are_free_within_the_bound_then_count() -> None:
    from chalicelib.core.retries import (
        MAX_INFRASTRUCTURE_RETRIES,
        decide_after_infrastructure_failure,
    )

    t = task(retries=0, retry_delay=300)
    delays = []
    for n in range(MAX_INFRASTRUCTURE_RETRIES):
        d = decide_after_infrastructure_failure(
            t,
            dag_id="etl",
            logical_date=LOGICAL,
            try_number=n + 1,
            failed_at=FAILED_AT,
            retry_base=n,
            infra_failures=n,
        )
        assert d.retry.state is TaskState.UP_FOR_RETRY and not d.counted
        delays.append(d.retry.delay_seconds)
    assert delays == [15, 30, 60, 120, 240]  # backoff, whatever the task's retry_delay
    last = decide_after_infrastructure_failure(
        t,
        dag_id="etl",
        logical_date=LOGICAL,
        try_number=MAX_INFRASTRUCTURE_RETRIES + 1,
        failed_at=FAILED_AT,
        retry_base=MAX_INFRASTRUCTURE_RETRIES,
        infra_failures=MAX_INFRASTRUCTURE_RETRIES,
    )
    assert last.counted and last.retry.state is TaskState.FAILED  # retries=0: charged, done
