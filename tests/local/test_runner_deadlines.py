"""Deadline alerts in dags test / dag.test(): judged when the run ends, callback run once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.local.runner import run_dag_test
from chalicelib.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, task

FIXED = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return FIXED


def overrunning_dag(calls: list[dict[str, Any]], retry_minutes: int) -> DAG:
    """One task that fails once and retries after ``retry_minutes`` (virtual time)."""
    alert = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(minutes=30),
        callback=SyncCallback(lambda **kw: calls.append(kw), kwargs={"to": "ops"}),
    )
    with DAG("overrun", deadline=alert) as dag:

        @task(retries=1, retry_delay=dt.timedelta(minutes=retry_minutes))
        def flaky(ti=None) -> None:
            if ti.try_number == 1:
                raise RuntimeError("again later")

        flaky()
    return dag


def test_a_run_that_overruns_its_deadline_reports_it_and_calls_back_once(capsys) -> None:
    calls: list[dict[str, Any]] = []
    result = run_dag_test(overrunning_dag(calls, 40), clock=fixed_clock)
    assert result.state == "success"
    (missed,) = result.missed_deadlines
    assert missed.deadline_time == FIXED + dt.timedelta(minutes=30) and missed.callback_ok
    assert len(calls) == 1 and calls[0]["to"] == "ops"
    assert calls[0]["context"]["dag_run"]["dag_run_id"] == result.run_id
    assert calls[0]["context"]["deadline"]["deadline_time"] == missed.deadline_time
    assert "missed deadline 0 at 2024-05-01T12:30:00+00:00" in capsys.readouterr().out


def test_a_run_that_ends_in_time_calls_nothing() -> None:
    calls: list[dict[str, Any]] = []
    result = run_dag_test(overrunning_dag(calls, 10), clock=fixed_clock, show=False)
    assert result.state == "success"
    assert result.missed_deadlines == [] and calls == []


def test_a_logical_date_long_past_has_missed_its_deadline_already() -> None:
    calls: list[dict[str, Any]] = []
    alert = DeadlineAlert(
        DeadlineReference.DAGRUN_LOGICAL_DATE,
        dt.timedelta(hours=1),
        SyncCallback(lambda **kw: calls.append(kw)),
    )
    with DAG("late", deadline=alert) as dag:
        task(lambda: None, task_id="t")()
    result = run_dag_test(
        dag, logical_date=FIXED - dt.timedelta(days=1), clock=fixed_clock, show=False
    )
    assert [m.deadline_time for m in result.missed_deadlines] == [
        FIXED - dt.timedelta(days=1) + dt.timedelta(hours=1)
    ]
    assert len(calls) == 1
