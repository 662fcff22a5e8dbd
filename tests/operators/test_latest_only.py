"""LatestOnlyOperator: skips downstream unless the run is the latest scheduled interval."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from chalicelib.core.runs import RunType
from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.dag import DAG
from operators.empty import EmptyOperator
from operators.latest_only import LatestOnlyOperator
from tests.operators.support import run_operator
from tests.runtime.runtime_doubles import scheduled_run

UTC = dt.timezone.utc
JAN_1 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def at(monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> None:
    monkeypatch.setattr(LatestOnlyOperator, "clock", staticmethod(lambda: now))


def build() -> LatestOnlyOperator:
    latest = LatestOnlyOperator(task_id="latest")
    latest >> EmptyOperator(task_id="work")
    return latest


def run_daily(monkeypatch: pytest.MonkeyPatch, now: dt.datetime, **run_changes: object):  # type: ignore[no-untyped-def]
    at(monkeypatch, now)
    # The daily interval 2024-01-01 .. 01-02; its successor ends 01-03.
    run = replace(scheduled_run("op_dag", JAN_1), **run_changes)  # type: ignore[arg-type]
    return run_operator(build, run=run, schedule="@daily", start_date=JAN_1)


def test_the_latest_run_proceeds(monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = run_daily(monkeypatch, dt.datetime(2024, 1, 2, 0, 5, tzinfo=UTC))
    assert result.state is TaskState.SUCCESS, result.error
    assert not result.skip_downstream


def test_an_old_run_skips_its_direct_downstream(monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = run_daily(monkeypatch, dt.datetime(2024, 1, 3, 0, 0, 1, tzinfo=UTC))
    assert result.state is TaskState.SUCCESS, result.error
    assert result.skip_downstream == ("work",)


def test_the_window_ends_when_the_next_interval_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = run_daily(monkeypatch, dt.datetime(2024, 1, 3, tzinfo=UTC))  # inclusive
    assert not result.skip_downstream


def test_a_manual_run_always_proceeds(monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = run_daily(monkeypatch, dt.datetime(2030, 1, 1, tzinfo=UTC), run_type=RunType.MANUAL)
    assert result.state is TaskState.SUCCESS
    assert not result.skip_downstream


def test_a_backfill_run_of_an_old_interval_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = run_daily(
        monkeypatch, dt.datetime(2030, 1, 1, tzinfo=UTC), run_type=RunType.BACKFILL
    )
    assert result.skip_downstream == ("work",)


def test_no_next_run_means_the_last_run_proceeds(monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, dt.datetime(2030, 1, 1, tzinfo=UTC))
    result, _ = run_operator(
        build, run=scheduled_run("op_dag", JAN_1), schedule="@once", start_date=JAN_1
    )
    assert not result.skip_downstream


def test_in_dags_test_a_manual_run_runs_everything() -> None:
    with DAG("latest_dag", schedule="@daily", start_date=JAN_1) as dag:
        build()
    result = run_dag_test(dag, show=False)
    assert result.succeeded
    assert result.task_states == {"latest": "success", "work": "success"}
