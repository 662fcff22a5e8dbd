"""No task process outlives its try: a command that ignores SIGTERM is killed
with its whole process group after the grace, so ``dags test`` ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chalicelib.runtime import process_groups

REPO_ROOT = Path(__file__).resolve().parents[2]
# A generous bound on the whole command: with the fix it ends in about two seconds.
BOUND_SECONDS = 90

STUBBORN_DAG = """
import datetime as dt
from chalicelib.sdk import DAG
from operators.bash import BashOperator

with DAG("stubborn", schedule=None{dag_args}) as dag:
    BashOperator(
        task_id="ignores_term",
        bash_command="echo $$ > {pidfile}; trap '' TERM; sleep 600 & wait; sleep 600",
        {task_args}
    )
"""


def gone(pgid: int, within: float = 10.0) -> bool:
    """Bounded wait for the group to have no live process (SIGKILL is not instant)."""
    deadline = time.monotonic() + within
    while process_groups.alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def run_dags_test(tmp_path: Path, dag_args: str = "", task_args: str = "") -> tuple[dict, int]:
    pidfile = tmp_path / "bash.pid"
    dag_file = tmp_path / "stubborn.py"
    dag_file.write_text(
        textwrap.dedent(
            STUBBORN_DAG.format(pidfile=pidfile, dag_args=dag_args, task_args=task_args)
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SLIPSTREAM_KILLED_TASK_CLEANUP_TIME": "0.5",
    }
    command = [sys.executable, "-m", "chalicelib.cli", "dags", "test", str(dag_file), "stubborn"]
    try:
        done = subprocess.run(
            [*command, "--json"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BOUND_SECONDS,
        )
    except subprocess.TimeoutExpired:
        if pidfile.exists():
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        pytest.fail(f"dags test did not end within {BOUND_SECONDS}s")
    assert pidfile.exists(), done.stderr
    return json.loads(done.stdout), int(pidfile.read_text())


def test_dags_test_ends_when_a_timed_out_command_ignores_sigterm(tmp_path: Path) -> None:
    result, pgid = run_dags_test(tmp_path, task_args="execution_timeout=dt.timedelta(seconds=1),")

    assert result["state"] == "failed"
    assert result["task_states"] == {"ignores_term": "failed"}
    assert result["errors"]["ignores_term"].startswith("TaskTimeout: ")
    assert gone(pgid), f"process group {pgid} outlived dags test"


def test_a_dagrun_timeout_stops_the_running_command_and_fails_the_run(tmp_path: Path) -> None:
    result, pgid = run_dags_test(tmp_path, dag_args=", dagrun_timeout=dt.timedelta(seconds=1)")

    assert result["state"] == "failed"
    assert result["reason"] == "dagrun_timeout exceeded"
    assert result["task_states"] == {"ignores_term": "skipped"}
    assert gone(pgid), f"process group {pgid} outlived dags test"
