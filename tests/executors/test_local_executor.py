"""LocalExecutor: warm worker processes fed from a queue.

Every wait is on an explicit signal: wait_idle (all status lines in), a
status callback, or the gate socket a running fake task connects to.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import DispatchError, DispatchHandle
from chalicelib.executors.local_executor import LocalExecutor, WorkerStartError, WorkerStatus
from chalicelib.runtime import process_groups
from tests.executors.fake_handlers import GATE_ENV, RECORD_ENV
from tests.executors.messages import message
from tests.processes import group_gone

HANDLER = "tests.executors.fake_handlers:handle"
WAIT = 60.0  # generous upper bound on a shared 2-core machine; the signal ends it early
SPEC = ExecutorSpec(kind="local")


class Gate:
    """A loopback server that a ``gate*`` task connects to while it runs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(WAIT)
        self.port = self.server.getsockname()[1]
        self.open: list[socket.socket] = []

    def arrived(self) -> str:
        conn, _ = self.server.accept()
        conn.settimeout(WAIT)
        self.open.append(conn)
        return conn.makefile().readline().strip()

    def release_all(self) -> None:
        for conn in self.open:
            conn.sendall(b"go\n")
            conn.close()
        self.open.clear()

    def close(self) -> None:
        for conn in self.open:
            conn.close()
        self.server.close()


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "record.jsonl"


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.close()


@pytest.fixture
def statuses() -> list[WorkerStatus]:
    return []


@pytest.fixture
def executor(record: Path, gate: Gate, statuses: list[WorkerStatus]) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(
        2,
        handler=HANDLER,
        extra_env={RECORD_ENV: str(record), GATE_ENV: str(gate.port)},
        on_status=statuses.append,
    )
    ex.start()
    yield ex
    gate.release_all()
    ex.stop(timeout=WAIT)


def _recorded(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_every_message_runs_once_on_warm_processes(
    executor: LocalExecutor, record: Path, statuses: list[WorkerStatus]
) -> None:
    pids = set(executor.pids)
    handles = [executor.dispatch(message(f"t{i}"), SPEC) for i in range(20)]
    assert executor.wait_idle(WAIT)
    labels = sorted(str(r["label"]) for r in _recorded(record))
    assert labels == sorted(message(f"t{i}").label for i in range(20))
    assert {r["pid"] for r in _recorded(record)} <= pids  # no process started per message
    assert len(pids) == 2
    assert all(s.ok for s in statuses)
    assert sorted(s.handle.ref for s in statuses) == sorted(h.ref for h in handles)
    assert len({h.ref for h in handles}) == 20
    assert executor.restarts == 0


def test_a_task_error_is_reported_and_the_process_lives_on(
    executor: LocalExecutor, statuses: list[WorkerStatus]
) -> None:
    pids = set(executor.pids)
    executor.dispatch(message("boom"), SPEC)
    assert executor.wait_idle(WAIT)
    (status,) = statuses
    assert not status.ok
    assert status.error == "RuntimeError: task boom failed on purpose"
    assert set(executor.pids) == pids
    assert executor.restarts == 0


def test_a_dead_process_is_reported_and_replaced(
    executor: LocalExecutor, record: Path, statuses: list[WorkerStatus]
) -> None:
    before = set(executor.pids)
    executor.dispatch(message("die"), SPEC)
    assert executor.wait_idle(WAIT)
    (died,) = statuses
    assert not died.ok
    assert died.pid in before
    assert f"exited with code 3 running {message('die').label}" in str(died.error)
    assert executor.restarts == 1
    after = set(executor.pids)
    assert len(after) == 2
    assert died.pid not in after

    for i in range(4):
        executor.dispatch(message(f"after{i}"), SPEC)
    assert executor.wait_idle(WAIT)
    assert all(s.ok for s in statuses[1:])
    assert len(statuses) == 5


def test_dispatch_returns_before_the_work_and_busy_counts_running_tries(
    executor: LocalExecutor, gate: Gate, statuses: list[WorkerStatus]
) -> None:
    executor.dispatch(message("gate1"), SPEC)
    executor.dispatch(message("gate2"), SPEC)
    executor.dispatch(message("queued"), SPEC)
    assert {gate.arrived(), gate.arrived()} == {"gate1", "gate2"}
    assert executor.busy_count == 2
    assert executor.pending_count == 3
    assert statuses == []
    assert not executor.wait_idle(0)
    gate.release_all()
    assert executor.wait_idle(WAIT)
    assert executor.busy_count == 0
    # "queued" could only start once a gated try freed its worker; the other
    # gated try may finish before or after it.
    finished = [s.message.task_id for s in statuses]
    assert sorted(finished) == ["gate1", "gate2", "queued"]
    assert finished[0] in {"gate1", "gate2"}


def test_dispatch_from_many_threads_runs_each_message_once(
    executor: LocalExecutor, record: Path
) -> None:
    def send(thread: int) -> None:
        for i in range(25):
            executor.dispatch(message(f"th{thread}", map_index=i), SPEC)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert executor.wait_idle(WAIT)
    labels = [str(r["label"]) for r in _recorded(record)]
    assert len(labels) == 200
    assert len(set(labels)) == 200


def test_stop_kills_stragglers_and_fails_what_never_started(
    record: Path, gate: Gate, statuses: list[WorkerStatus]
) -> None:
    ex = LocalExecutor(
        1,
        handler=HANDLER,
        extra_env={RECORD_ENV: str(record), GATE_ENV: str(gate.port)},
        on_status=statuses.append,
    )
    ex.start()
    ex.dispatch(message("gate-stuck"), SPEC)
    assert gate.arrived() == "gate-stuck"  # running, and never released
    ex.dispatch(message("never"), SPEC)
    ex.stop(timeout=0.2)
    assert ex.pending_count == 0
    by_task = {s.message.task_id: s for s in statuses}
    assert "exited with code" in str(by_task["gate-stuck"].error)
    assert by_task["never"].error == "local executor stopped before the try started"
    assert ex.restarts == 0
    with pytest.raises(DispatchError, match="stopped"):
        ex.dispatch(message("late"), SPEC)


def test_stop_kills_the_task_processes_of_a_straggler(
    record: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_KILLED_TASK_CLEANUP_TIME", "0.3")
    ex = LocalExecutor(
        1, handler=HANDLER, extra_env={RECORD_ENV: str(record), GATE_ENV: str(gate.port)}
    )
    ex.start()
    ex.dispatch(message("stubborn"), SPEC)
    assert gate.arrived() == "stubborn"  # its command runs, ignoring SIGTERM
    pgid = next(int(str(r["pgid"])) for r in _recorded(record) if "pgid" in r)
    try:
        ex.stop(timeout=0.2)
        assert group_gone(pgid), f"task process group {pgid} outlived its worker"
    finally:
        if process_groups.alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_stop_lets_queued_work_finish(record: Path) -> None:
    ex = LocalExecutor(1, handler=HANDLER, extra_env={RECORD_ENV: str(record)})
    with ex:
        for i in range(5):
            ex.dispatch(message(f"q{i}"), SPEC)
    assert len(_recorded(record)) == 5
    assert ex.pending_count == 0


def test_dispatch_starts_the_pool_on_first_use(record: Path) -> None:
    ex = LocalExecutor(1, handler=HANDLER, extra_env={RECORD_ENV: str(record)})
    try:
        ex.dispatch(message(), SPEC)
        assert ex.wait_idle(WAIT)
        assert len(_recorded(record)) == 1
    finally:
        ex.stop(timeout=WAIT)


def test_a_worker_that_cannot_start_fails_start_clearly() -> None:
    ex = LocalExecutor(1, handler="tests.executors.fake_handlers:missing")
    with pytest.raises(WorkerStartError, match="did not start"):
        ex.start()


def test_the_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(0)


def test_a_follow_up_relayed_while_stopping_is_left_queued_not_raised() -> None:
    """A worker that answers with hand-offs after stop() began: the try it ran
    still reports, and its follow-ups stay queued in the store for the next
    stack's reconciliation (no exception out of the feeder thread)."""
    ex = LocalExecutor(1, handler=HANDLER)
    follow_up = message("next")

    class Answering:
        pid = 4242

        def alive(self) -> bool:
            return True

        def exchange(self, _message: object) -> dict[str, object]:
            return {"ok": True, "dispatch": [follow_up.model_dump(mode="json")]}

    ex._processes = [Answering()]  # type: ignore[list-item]
    ex._started = True
    ex._stopping = True
    status = ex._run(0, DispatchHandle("local", "local-1"), message("done"))
    assert status.ok and [m.task_id for m in status.relayed] == ["next"]
    assert ex.pending_count == 0
