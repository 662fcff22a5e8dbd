"""A worker whose try is no longer running in the store (marked, cleared, reaped)
stops it, as Airflow's task runner does, processes included."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from pathlib import Path

import pytest

from chalicelib.sdk import DAG
from chalicelib.store.memory import InMemoryStateStore
from operators.bash import BashOperator
from tests.processes import group_gone
from tests.scheduler.harness import FakeClock, Stack


def test_a_try_that_is_no_longer_running_is_stopped_with_its_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_KILLED_TASK_CLEANUP_TIME", "0.3")
    stack = Stack(
        store=InMemoryStateStore(), clock=FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    )
    pidfile = tmp_path / "bash.pid"
    with DAG("marked") as dag:
        BashOperator(
            task_id="stubborn",
            bash_command=f"echo $$ > {pidfile}; trap '' TERM; sleep 600 & wait",
        )
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("marked")
    stack.deps.heartbeat_seconds = 0.01
    # The store says the try is over once its command runs (someone marked it failed).
    stack.store.heartbeat = lambda *args: not pidfile.exists()  # type: ignore[method-assign]
    worker = threading.Thread(target=stack.settle, daemon=True)
    worker.start()
    worker.join(60)  # a bound, not a pause: the try is stopped about half a second in
    stuck = worker.is_alive()
    pgid = int(pidfile.read_text())
    if stuck:
        os.killpg(pgid, signal.SIGKILL)
    assert not stuck, "the worker kept running a try the store says is over"
    ti = stack.store.get_instance("marked", run.run_id, "stubborn", -1)
    assert ti is not None and ti.error is not None and "Task stopped" in ti.error
    assert group_gone(pgid)
