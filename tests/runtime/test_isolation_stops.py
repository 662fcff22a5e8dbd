"""How an isolated try ends when it does not end by itself: its execution_timeout
(in the child, as in-process), the worker's outer deadline, the heartbeat's
cancel, and a child that dies without a result."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.processes import group_gone
from tests.runtime.isolation_stack import bundle_stack, fixed_credentials, instance, run_once

HEADER = """
import os, signal, time
from datetime import datetime, timedelta
from chalicelib.sdk import DAG
from operators.bash import BashOperator
from operators.python import PythonOperator
"""


def timed_task(body: str) -> str:
    """A DAG ``iso`` of one task ``timed``, running ``body``, with a 1 s execution_timeout."""
    return (
        HEADER
        + f"""
def timed():
    {body}
    time.sleep(120)

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="timed", python_callable=timed, execution_timeout=timedelta(seconds=1))
"""
    )


def test_execution_timeout_is_enforced_inside_the_child(tmp_path: Path) -> None:
    stack, logs, run = run_once(tmp_path, timed_task("pass"))
    ti = instance(stack, run, "timed")
    assert ti.state.value == "failed"
    assert ti.error == "TaskTimeout: Task exceeded its execution_timeout of 1s"
    assert any(level == "error" for _, level, _ in logs.events("timed"))


def test_a_child_past_its_outer_deadline_is_stopped_by_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_ISOLATION_GRACE_SECONDS", "1")
    # the task blocks the child's own timer, so only the worker can stop it
    source = timed_task("signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])")
    stack, _, run = run_once(tmp_path, source)
    ti = instance(stack, run, "timed")
    assert ti.state.value == "failed"
    assert ti.error is not None
    assert ti.error.startswith("TaskTimeout: Task exceeded its execution_timeout of 1s")
    assert "interpreter was stopped" in ti.error


def cancelled_once_started(tmp_path: Path, source: str, started: Path) -> tuple[Any, Any, bool]:
    """Run DAG ``iso`` on a worker thread; the store says its try is over (someone
    marked it) once ``started`` exists. True when the worker is still busy after
    a bound (not a pause: the try is stopped about a second in)."""
    stack, _ = bundle_stack(tmp_path, source, credentials=fixed_credentials)
    run, _ = stack.scheduler.trigger("iso")
    stack.deps.heartbeat_seconds = 0.05
    stack.store.heartbeat = lambda *args: not started.exists()  # type: ignore[method-assign]
    worker = threading.Thread(target=stack.settle, daemon=True)
    worker.start()
    worker.join(120)
    return stack, run, worker.is_alive()


def test_a_cancelled_try_stops_its_child_and_the_commands_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_KILLED_TASK_CLEANUP_TIME", "0.3")
    pidfile = tmp_path / "bash.pid"
    source = (
        HEADER
        + f"""
with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    BashOperator(
        task_id="stubborn",
        bash_command="echo $$ > {pidfile}; trap '' TERM; sleep 600 & wait",
    )
"""
    )
    # The store says the try is over once its command runs (someone marked it failed).
    stack, run, stuck = cancelled_once_started(tmp_path, source, pidfile)
    pgid = int(pidfile.read_text())
    if stuck:
        os.killpg(pgid, signal.SIGKILL)
    assert not stuck, "the worker kept running a try the store says is over"
    ti = instance(stack, run, "stubborn")
    assert ti.error is not None
    assert ti.error.startswith("TaskCancelled: Task stopped: the try is no longer running")
    assert group_gone(pgid)


def test_a_child_that_dies_without_a_result_fails_the_try_through_its_retries(
    tmp_path: Path,
) -> None:
    source = (
        HEADER
        + """
def die():
    os.kill(os.getpid(), signal.SIGKILL)

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="die", python_callable=die, retries=1, retry_delay=timedelta(0))
"""
    )
    stack, _, run = run_once(tmp_path, source)
    ti = instance(stack, run, "die")
    assert (ti.state.value, ti.try_number) == ("failed", 2)
    assert ti.error == (
        "IsolatedTaskDied: the task's interpreter ended without a result (killed by signal SIGKILL)"
    )


def test_a_child_that_does_not_stop_when_cancelled_is_stopped_by_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, a cancel reaches a task blocked in C code (a long sleep) only
    when the call returns; the worker stops such a child after the grace."""
    monkeypatch.setenv("SLIPSTREAM_ISOLATION_GRACE_SECONDS", "1")
    started = tmp_path / "started"
    source = (
        HEADER
        + f"""
def blocked():
    open("{started}", "w").close()
    time.sleep(600)

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="blocked", python_callable=blocked)
"""
    )
    stack, run, stuck = cancelled_once_started(tmp_path, source, started)
    assert not stuck, "the worker waited for a child it had cancelled"
    ti = instance(stack, run, "blocked")
    assert ti.error == (
        "TaskCancelled: Task stopped: the try is no longer running (marked, cleared or reaped)"
    )


def test_a_child_that_cannot_start_is_an_infrastructure_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    source = (
        HEADER
        + """
with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="never", python_callable=print, retries=0)
"""
    )
    stack, _ = bundle_stack(tmp_path, source, credentials=fixed_credentials)

    def no_processes(*args: object, **kwargs: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setenv("SLIPSTREAM_ISOLATION_TEMPLATE", "off")  # its forks: test_isolation_template
    monkeypatch.setattr(subprocess, "Popen", no_processes)
    run = run_first_try(stack)
    ti = instance(stack, run, "never")
    assert ti.state.value == "up_for_retry"  # not charged to the task's (zero) retries
    assert ti.error == (
        "infrastructure failure: OSError: could not start the task's interpreter: "
        "BlockingIOError: [Errno 11] Resource temporarily unavailable"
    )


def run_first_try(stack: Any) -> Any:
    """Trigger DAG ``iso`` and run its first try once, without settling (no retry)."""
    run, _ = stack.scheduler.trigger("iso")
    message, _ = stack.queue.pending.pop(0)
    stack.scheduler.handle(message)
    (invocation,) = stack.executor.invocations
    stack.run_worker(invocation)
    return run
