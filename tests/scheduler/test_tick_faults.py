"""The tick under AWS faults: one DAG's (or run's) failure is its own, the
others are scheduled, and an expected AWS error is one log line."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pendulum
import pytest
from moto import mock_aws

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
from tests.aws_faults import AwsFaults
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        store = make_dynamo_store(store_settings())
        yield Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def _hourly(dag_id: str) -> DAG:
    with DAG(
        dag_id,
        schedule="@hourly",
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        EmptyOperator(task_id="a")
    return dag


def _mentions(text: bytes):
    return lambda request: text in (request.body or b"")


def test_a_throttled_dag_does_not_stop_the_tick(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    for dag_id in ("aaa_throttled", "zzz_healthy"):
        stack.deploy(_hourly(dag_id))
    caplog.set_level(logging.WARNING, logger="slipstream.scheduler")

    with AwsFaults() as faults:
        faults.refuse("dynamodb", "GetItem", when=_mentions(b"aaa_throttled"))
        report = stack.scheduler.tick()

    # zzz_healthy's latest tick (Airflow 3's trigger timetable)
    assert report.runs_created == ["scheduled__2024-01-01T03:00:00+00:00"]
    assert stack.store.active_runs("zzz_healthy")
    assert not stack.store.active_runs("aaa_throttled")
    assert len(report.failures) == 1 and "aaa_throttled" in report.failures[0]
    failed = [r for r in caplog.records if "aaa_throttled" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is None  # one line, no traceback
    assert "ProvisionedThroughputExceededException" in failed[0].getMessage()
    # The next tick, AWS healthy again, schedules what was left.
    assert stack.scheduler.tick().runs_created == ["scheduled__2024-01-01T03:00:00+00:00"]
    assert stack.store.active_runs("aaa_throttled")


def test_a_bug_in_one_item_keeps_its_traceback_and_spares_the_rest(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dag_id in ("aaa_broken", "zzz_healthy"):
        stack.deploy(_hourly(dag_id))
    original = stack.scheduler.schedule_dag

    def schedule_dag(dag_id: str, now: dt.datetime) -> list[str]:
        if dag_id == "aaa_broken":
            raise KeyError("a bug")
        return original(dag_id, now)

    monkeypatch.setattr(stack.scheduler, "schedule_dag", schedule_dag)
    report = stack.scheduler.tick()

    assert len(report.runs_created) == 1
    failed = [r for r in caplog.records if "aaa_broken" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None


def test_stale_tries_are_reaped_one_by_one(stack: Stack) -> None:
    """One run's failure while reaping does not leave the other runs' tries."""
    stack.deploy(_hourly("aaa_reaped"))
    stack.deploy(_hourly("zzz_reaped"))
    stack.scheduler.tick()
    # Start both runs and claim their tries, then let the workers "die".
    while stack.queue.pending:
        message, _ = stack.queue.pending.pop(0)
        stack.scheduler.handle(message)
    for message in stack.executor.invocations:
        assert stack.claim(message)
        # their first heartbeat put them in the reaper's index
        beat = (message.dag_id, message.run_id, message.task_id, message.map_index)
        assert stack.store.heartbeat(*beat, message.try_number, stack.clock())
    stack.executor.invocations.clear()
    stack.clock.advance(3600)

    with AwsFaults() as faults:
        faults.refuse("dynamodb", "GetItem", when=_mentions(b"aaa_reaped"))
        report = stack.scheduler.tick()

    assert [r.split("/")[-1] for r in report.tries_reaped] == ["a"]
    assert any("aaa_reaped" in f for f in report.failures)
