"""BashOperator through the real runtime: results, environment, exit codes, templates, kill."""

from __future__ import annotations

import datetime as dt
import os
import select
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec, TaskSpec
from chalicelib.core.states import TaskState
from chalicelib.runtime import InMemoryXComStore, TryRequest, TryResult, execute_try
from chalicelib.sdk.dag import DAG
from operators.bash import BashOperator
from tests.processes import group_gone
from tests.runtime.runtime_doubles import Clock, scheduled_run

UTC = dt.timezone.utc


def run_bash(
    *,
    retries: int = 0,
    run: DagRun | None = None,
    dag_kwargs: dict[str, Any] | None = None,
    fileloc: Path | None = None,
    in_thread: bool = False,
    **operator_kwargs: Any,
) -> tuple[TryResult, InMemoryXComStore]:
    with DAG("bash_dag", **(dag_kwargs or {})) as dag:
        BashOperator(task_id="b", retries=retries, **operator_kwargs)
    if fileloc is not None:
        dag.fileloc = str(fileloc)
    spec = DagSpec(
        dag_id="bash_dag",
        tasks={"b": TaskSpec(task_id="b", operator="operators.bash.BashOperator", retries=retries)},
        sdk_version="test",
    )
    request = TryRequest(dag=dag, spec=spec, run=run or scheduled_run("bash_dag"), task_id="b")
    store = InMemoryXComStore()
    if in_thread:
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(execute_try, request, store, clock=Clock()).result()
    else:
        result = execute_try(request, store, clock=Clock())
    return result, store


def returned(store: InMemoryXComStore) -> Any:
    found, value = store.pull("b", -1, "return_value")
    assert found
    return value


def test_the_last_line_of_output_is_the_result() -> None:
    result, store = run_bash(bash_command="echo first; echo '  last  '")
    assert result.state is TaskState.SUCCESS
    assert returned(store) == "  last"


def test_stderr_is_part_of_the_output_as_in_airflow() -> None:
    _, store = run_bash(bash_command="echo out; echo err >&2")
    assert returned(store) == "err"


def test_no_output_gives_an_empty_string() -> None:
    _, store = run_bash(bash_command="true")
    assert returned(store) == ""


def test_env_alone_replaces_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_OUTER", "outer")
    _, store = run_bash(
        bash_command='echo "$FOO|${SLIPSTREAM_OUTER:-unset}|$AIRFLOW_CTX_DAG_ID"',
        env={"FOO": "bar"},
    )
    assert returned(store) == "bar|unset|bash_dag"


def test_append_env_merges_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_OUTER", "outer")
    monkeypatch.setenv("FOO", "from-os")
    _, store = run_bash(
        bash_command='echo "$FOO|$SLIPSTREAM_OUTER"', env={"FOO": "bar"}, append_env=True
    )
    assert returned(store) == "bar|outer"


def test_no_env_inherits_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_OUTER", "outer")
    _, store = run_bash(bash_command='echo "$SLIPSTREAM_OUTER $AIRFLOW_CTX_TASK_ID"')
    assert returned(store) == "outer b"


def test_cwd_and_default_temporary_directory(tmp_path: Path) -> None:
    _, store = run_bash(bash_command="pwd", cwd=str(tmp_path))
    assert returned(store) == str(tmp_path)
    _, store = run_bash(bash_command="pwd")
    assert os.path.basename(returned(store)).startswith("airflowtmp")
    result, _ = run_bash(bash_command="pwd", cwd=str(tmp_path / "missing"))
    assert result.state is TaskState.FAILED
    assert result.error == f"TaskFailed: Can not find the cwd: {tmp_path / 'missing'}"


def test_non_zero_exit_fails_the_try_and_retries_apply() -> None:
    result, store = run_bash(bash_command="echo partial; exit 3", retries=1)
    assert result.state is TaskState.UP_FOR_RETRY
    assert result.error == (
        "TaskFailed: Bash command failed. The command returned a non-zero exit code 3."
    )
    assert store.pull("b", -1, "return_value") == (False, None)


@pytest.mark.parametrize(
    ("command", "skip_codes", "state"),
    [
        ("exit 99", 99, TaskState.SKIPPED),
        ("exit 2", [2, 3], TaskState.SKIPPED),
        ("exit 99", None, TaskState.FAILED),
        ("exit 4", [2, 3], TaskState.FAILED),
    ],
)
def test_skip_on_exit_code(command: str, skip_codes: Any, state: TaskState) -> None:
    result, _ = run_bash(bash_command=command, skip_on_exit_code=skip_codes)
    assert result.state is state


def test_templated_command_sees_ds_params_and_conf() -> None:
    run = scheduled_run("bash_dag", dt.datetime(2024, 1, 31, tzinfo=UTC), conf={"k": "v"})
    _, store = run_bash(
        run=run,
        dag_kwargs={"params": {"x": "px"}},
        bash_command="echo {{ ds }} {{ params.x }} {{ dag_run.conf['k'] }} {{ dag_run.conf }}",
        env={"DAY": "{{ ds_nodash }}"},
    )
    assert returned(store) == "2024-01-31 px v {k: v}"


def test_templated_env_values() -> None:
    _, store = run_bash(bash_command='echo "$DAY"', env={"DAY": "{{ ds_nodash }}"})
    assert returned(store) == "20240101"


def test_a_script_file_next_to_the_dag_is_rendered(tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text('echo "run {{ ds }}"\n')
    _, store = run_bash(bash_command="job.sh", fileloc=tmp_path / "dag.py")
    assert returned(store) == "run 2024-01-01"


def wait_until_gone(pid: int) -> bool:
    """True once process ``pid`` has exited (a pidfd is readable then); at most 10 s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], 10)
        return bool(readable)
    finally:
        os.close(fd)


@pytest.mark.parametrize("in_thread", [False, True], ids=["main-thread", "worker-thread"])
def test_timeout_kills_the_whole_process_group(tmp_path: Path, in_thread: bool) -> None:
    pidfile = tmp_path / "child.pid"
    result, _ = run_bash(
        bash_command=f"sleep 60 & echo $! > {pidfile}; wait",
        execution_timeout=dt.timedelta(seconds=0.5),
        in_thread=in_thread,
    )
    assert result.state is TaskState.FAILED
    assert result.error is not None and result.error.startswith("TaskTimeout: ")
    assert wait_until_gone(int(pidfile.read_text()))


def test_on_kill_without_a_process_does_nothing() -> None:
    BashOperator(task_id="idle", bash_command="true").on_kill()


@pytest.mark.parametrize("in_thread", [False, True], ids=["main-thread", "worker-thread"])
def test_a_command_ignoring_sigterm_is_killed_after_the_grace(
    tmp_path: Path, in_thread: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_KILLED_TASK_CLEANUP_TIME", "0.3")
    pidfile = tmp_path / "bash.pid"
    outcome: list[TryResult] = []

    def run() -> None:
        result, _ = run_bash(
            bash_command=f"echo $$ > {pidfile}; trap '' TERM; sleep 600 & wait; sleep 600",
            execution_timeout=dt.timedelta(seconds=0.5),
        )
        outcome.append(result)

    if in_thread:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(60)  # a bound, not a pause: it ends about a second in
        stuck = worker.is_alive()
    else:
        run()
        stuck = False
    pgid = int(pidfile.read_text())
    if stuck:
        os.killpg(pgid, signal.SIGKILL)
    assert not stuck, "the try did not end after its timeout"
    assert outcome[0].state is TaskState.FAILED
    assert outcome[0].error is not None and outcome[0].error.startswith("TaskTimeout: ")
    assert group_gone(pgid)
