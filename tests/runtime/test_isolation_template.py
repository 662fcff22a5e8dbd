"""Isolated tries forked from the template interpreter (SLIPSTREAM_ISOLATION_TEMPLATE=on).

The worker here is this test process: a child forked by the template has the
template as its parent, a spawned one has this process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.runtime import isolation_template
from tests.processes import group_gone
from tests.runtime.isolation_stack import bundle_stack, instance
from tests.runtime.test_isolation_stops import run_first_try

SOURCE = """
import os, sys
from datetime import datetime
from chalicelib.sdk import DAG
from operators.python import PythonOperator


def report():
    print("hello from the fork")
    left = getattr(sys.modules["chalicelib.runtime"], "left_by", None)
    sys.modules["chalicelib.runtime"].left_by = os.environ["AWS_ACCESS_KEY_ID"]
    os.environ["LEFT_BY"] = os.environ["AWS_ACCESS_KEY_ID"]
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgrp(),
        "key": os.environ["AWS_ACCESS_KEY_ID"],
        "left_in_module": left,
    }

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="report", python_callable=report)
"""


@pytest.fixture(autouse=True)
def template_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a template: one left by an earlier test (or an
    earlier module in this worker process) would serve it instead."""
    monkeypatch.setenv(isolation_template.TEMPLATE_ENV, "on")
    isolation_template.shutdown()
    yield
    isolation_template.shutdown()


def credentials_for(secret: str) -> Any:
    def credentials(tenant: str) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": f"ASIA{tenant.upper()}{secret[:6]}",
            "AWS_SECRET_ACCESS_KEY": f"secret-{secret}",
            "AWS_SESSION_TOKEN": f"token-{secret}",
        }

    return credentials


def run_report(tmp_path: Path, secret: str, tenant: str = "acme", run_id: str = "r1") -> Any:
    """One try of ``report`` for ``tenant``; what it returned."""
    stack, logs = bundle_stack(
        tmp_path / tenant / run_id, SOURCE, credentials=credentials_for(secret), tenant=tenant
    )
    run, _ = stack.scheduler.trigger("iso", run_id=run_id)
    stack.settle()
    assert instance(stack, run, "report").state.value == "success"
    assert ("hello from the fork", "info", "stdout") in logs.events("report")
    found, value = stack.xcoms[("iso", run.run_id)].pull("report", -1, "return_value")
    assert found
    return value


def template_pid() -> int:
    template = isolation_template.current()
    assert template is not None, "no template interpreter runs"
    return template.pid


def test_an_isolated_try_runs_in_a_fork_of_the_template(tmp_path: Path) -> None:
    got = run_report(tmp_path, uuid.uuid4().hex)
    assert got["ppid"] == template_pid() != os.getpid()
    assert got["pgid"] == got["pid"]  # a session of its own, as a spawned child
    assert got["key"].startswith("ASIAACME")
    status = Path(f"/proc/{template_pid()}/status").read_text()
    assert "\nThreads:\t1\n" in status  # forking a threaded process could copy a held lock


def test_the_template_holds_no_credentials_and_never_received_a_job(tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    run_id = f"run-{uuid.uuid4().hex}"
    run_report(tmp_path, secret, run_id=run_id)
    pid = template_pid()
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
    names = {entry.partition("=")[0] for entry in environ.split("\0") if entry}
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert secret not in environ
    assert "PYTHONPATH" in names and "AWS_EC2_METADATA_DISABLED" in names
    if os.geteuid() != 0:
        pytest.skip("reading a non-dumpable process's memory needs CAP_SYS_PTRACE")
    memory = read_memory(pid)
    assert b"AWS_EC2_METADATA_DISABLED=true" in memory  # the scan does find what is there
    # neither the tenant's keys nor the job (its run id) ever reached the template
    for needle in (secret, f"ASIAACME{secret[:6]}", run_id):
        assert needle.encode() not in memory


def read_memory(pid: int) -> bytes:
    """Every readable mapping of ``pid`` (root may read a non-dumpable process)."""
    chunks: list[bytes] = []
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            match = re.match(r"([0-9a-f]+)-([0-9a-f]+) r", line)
            if not match or "[vvar" in line or "[vsyscall]" in line:
                continue
            start, end = (int(x, 16) for x in match.groups())
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return b"".join(chunks)


def test_a_killed_template_is_bypassed_once_and_restarted_next(tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    first = run_report(tmp_path, secret, run_id="r1")
    template = isolation_template.current()
    assert template is not None and first["ppid"] == template.pid
    os.kill(template.pid, signal.SIGKILL)
    template.proc.wait(10)
    spawned = run_report(tmp_path, secret, run_id="r2")
    assert spawned["ppid"] == os.getpid()  # spawned by this worker, as without a template
    assert isolation_template.current() is None
    again = run_report(tmp_path, secret, run_id="r3")
    assert again["ppid"] == template_pid() != template.pid


def test_a_template_that_cannot_start_leaves_the_try_to_a_spawned_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_template(env: Any) -> None:
        raise OSError("no processes left")

    monkeypatch.setattr(isolation_template, "Template", no_template)
    got = run_report(tmp_path, uuid.uuid4().hex)
    assert got["ppid"] == os.getpid()


def test_a_template_that_refuses_a_fork_is_never_used_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template answers a malformed request (one descriptor) with a failure:
    that try is spawned, the template is stopped, the next try gets a new one."""
    secret = uuid.uuid4().hex
    run_report(tmp_path, secret, run_id="r1")
    refused = isolation_template.current()
    assert refused is not None
    real_send_fds = socket.send_fds

    def one_descriptor(sock: socket.socket, buffers: Any, fds: list[int]) -> int:
        return real_send_fds(sock, buffers, fds[:1])

    monkeypatch.setattr(socket, "send_fds", one_descriptor)
    spawned = run_report(tmp_path, secret, run_id="r2")
    assert spawned["ppid"] == os.getpid()
    assert isolation_template.current() is None
    assert refused.proc.poll() is not None  # stopped, not left to serve again
    monkeypatch.setattr(socket, "send_fds", real_send_fds)
    again = run_report(tmp_path, secret, run_id="r3")
    assert again["ppid"] == template_pid() != refused.pid


def test_off_spawns_every_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(isolation_template.TEMPLATE_ENV, "off")
    got = run_report(tmp_path, uuid.uuid4().hex)
    assert got["ppid"] == os.getpid()
    assert isolation_template.current() is None
    monkeypatch.setenv(isolation_template.TEMPLATE_ENV, "sometimes")
    stack, _ = bundle_stack(tmp_path / "bad", SOURCE, credentials=credentials_for("k" * 8))
    run = run_first_try(stack)
    ti = instance(stack, run, "report")
    assert ti.state.value == "up_for_retry"  # the worker's setting, not the task's fault
    assert ti.error == (
        "infrastructure failure: OSError: could not start the task's interpreter: "
        "ValueError: SLIPSTREAM_ISOLATION_TEMPLATE must be on or off, not 'sometimes'"
    )


def test_two_tenants_in_a_row_get_separate_clean_forks(tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    acme = run_report(tmp_path, secret, tenant="acme")
    globex = run_report(tmp_path, secret, tenant="globex")
    assert acme["ppid"] == globex["ppid"] == template_pid()
    assert acme["pid"] != globex["pid"]
    assert globex["key"].startswith("ASIAGLOBEX")
    # what acme's task left in its interpreter is not in globex's
    assert acme["left_in_module"] is None and globex["left_in_module"] is None


def test_the_worker_stops_a_forked_childs_process_group_past_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_ISOLATION_GRACE_SECONDS", "1")
    pids = tmp_path / "pids"
    source = f"""
import os, signal, time
from datetime import datetime, timedelta
from chalicelib.sdk import DAG
from operators.python import PythonOperator

def stuck():
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])  # only the worker can stop it
    with open("{pids}", "w") as f:
        f.write(f"{{os.getpid()}} {{os.getppid()}}")
    time.sleep(120)

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="stuck", python_callable=stuck, execution_timeout=timedelta(seconds=1))
"""
    stack, _ = bundle_stack(tmp_path, source, credentials=credentials_for("k" * 8))
    run, _ = stack.scheduler.trigger("iso")
    stack.settle()
    ti = instance(stack, run, "stuck")
    assert ti.error is not None and "interpreter was stopped" in ti.error
    pid, ppid = (int(x) for x in pids.read_text().split())
    assert ppid == template_pid()
    assert group_gone(pid)


def test_a_child_whose_template_dies_under_it_still_ends_its_try(tmp_path: Path) -> None:
    """The template is killed while its fork runs: the fork's answer still counts;
    a fork that then dies without one fails its try, its exit status unknown."""
    source = """
import os, signal
from datetime import datetime
from chalicelib.sdk import DAG
from operators.python import PythonOperator

def kill_template():
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
        if b"isolation_zygote" not in f.read():
            raise RuntimeError("not a fork of the template")
    os.kill(os.getppid(), signal.SIGKILL)

def orphaned():
    kill_template()
    return "answered"

def orphaned_and_dead():
    kill_template()
    os._exit(3)

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    a = PythonOperator(task_id="orphaned", python_callable=orphaned)
    b = PythonOperator(task_id="spawned", python_callable=print)  # the template is gone
    c = PythonOperator(task_id="dead", python_callable=orphaned_and_dead, retries=0)
    a >> b >> c
"""
    stack, _ = bundle_stack(tmp_path, source, credentials=credentials_for("k" * 8))
    run, _ = stack.scheduler.trigger("iso")
    stack.settle()
    assert instance(stack, run, "orphaned").state.value == "success"
    assert instance(stack, run, "spawned").state.value == "success"
    dead = instance(stack, run, "dead")
    assert (dead.state.value, dead.error) == (
        "failed",
        "IsolatedTaskDied: the task's interpreter ended without a result "
        "(exit status unknown: its template interpreter ended first)",
    )
