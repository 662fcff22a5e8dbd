"""The local serverless stack end to end: moto server, queue poller, warm workers.

This is what ``make demo`` runs. The run is awaited on the stack's own
notifications (worker answers, handled batches), never on a sleep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.states import DagRunState
from chalicelib.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack():
    with LocalStack(workers=2, tick_seconds=3600) as running:
        report = running.deploy(ROOT)
        assert report.ok, report.problems
        yield running


def test_examples_deploy_and_the_etl_runs_with_its_retry(stack: LocalStack, tmp_path) -> None:
    run = stack.trigger("etl_hourly")
    final = stack.wait_for_run("etl_hourly", run.run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    store = wiring.state_store()
    first = store.get_instance("etl_hourly", run.run_id, "wait_for_source", -1)
    assert first is not None and first.try_number == 2  # failed once, retried by a timer
    load = store.get_instance("etl_hourly", run.run_id, "load", -1)
    assert load is not None and load.state.value == "success"
    # The warm workers wrote each try's log to moto's CloudWatch Logs, one stream per try.
    lines, _ = wiring.read_try_log("etl_hourly", run.run_id, "load", -1, 1, limit=1000)
    assert any("SUCCESS" in line["event"] for line in lines)
    failed, _ = wiring.read_try_log("etl_hourly", run.run_id, "wait_for_source", -1, 1)
    assert any(line["level"] == "error" for line in failed)


def test_mapped_fan_out_runs_on_warm_workers(stack: LocalStack) -> None:
    pids_before = set(stack.executor.pids)
    run = stack.trigger("mapped_fanout", {"partitions": 5})
    final = stack.wait_for_run("mapped_fanout", run.run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    progress = wiring.state_store().run_progress("mapped_fanout", run.run_id)
    assert progress.total == progress.finished == 2 + 5
    assert set(stack.executor.pids) == pids_before  # the same warm processes did the work
