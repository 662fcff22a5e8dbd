"""Handlers that local worker processes run in executor tests, chosen by task id.

They signal the test over explicit channels (a record file, a loopback socket)
so tests wait on events, never on time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

from chalicelib.core.messages import WorkerMessage

RECORD_ENV = "SLIPSTREAM_TEST_RECORD"
GATE_ENV = "SLIPSTREAM_TEST_GATE_PORT"


def handle(message: WorkerMessage) -> None:
    """``boom`` raises, ``die`` kills its process, ``print`` writes to stdout,
    ``gate`` waits for the test's go-ahead, ``stubborn`` starts a command that
    ignores SIGTERM and then waits at the gate; every message is recorded first."""
    _record(message)
    if message.task_id.startswith("stubborn"):
        _start_stubborn_command()
    if message.task_id == "boom":
        raise RuntimeError(f"task {message.task_id} failed on purpose")
    if message.task_id == "die":
        os._exit(3)
    if message.task_id == "print":
        print("user output that must not break the protocol")
        os.system("echo from a child process")  # writes to fd 1 on purpose
    if message.task_id.startswith(("gate", "stubborn")):
        _wait_at_gate(message)


def _record(message: WorkerMessage) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    line = json.dumps({"pid": os.getpid(), "label": message.label}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _wait_at_gate(message: WorkerMessage) -> None:
    """Tell the test this try is running, then block until it says go."""
    with socket.create_connection(("127.0.0.1", int(os.environ[GATE_ENV]))) as conn:
        conn.sendall(f"{message.task_id}\n".encode())
        conn.recv(16)


def _start_stubborn_command() -> None:
    """A task process in its own group, as BashOperator starts one; its group id is recorded."""
    from chalicelib.runtime import process_groups

    command = "trap '' TERM; sleep 600 & wait"
    process = subprocess.Popen(["bash", "-c", command], start_new_session=True)
    process_groups.register(process.pid)
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"pgid": process.pid}) + "\n")
