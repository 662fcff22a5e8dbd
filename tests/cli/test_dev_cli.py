"""``slipstream dev``: the whole system in a subprocess, stopped by SIGTERM with nothing left."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 90.0
STOP_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chalicelib.cli", "dev", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: we can look for leftovers
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(proc: subprocess.Popen[str], marker: str, deadline: float) -> list[str]:
    """stdout lines up to the one holding ``marker``; fails at the deadline or on exit.

    A thread reads the pipe (a blocking readline cannot time out), handing lines over a queue.
    """
    assert proc.stdout is not None
    stdout = proc.stdout
    received: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stdout.readline, ""):
            received.put(line)
        received.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    lines: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} line in time; got {lines}"
        try:
            line = received.get(timeout=remaining)
        except queue.Empty:
            continue
        assert line, f"exited ({proc.poll()}) before {marker!r}: {lines}"
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group, read from /proc (psutil is not installed)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(entry))
    return members


def test_dev_serves_the_api_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    proc = start("--port", str(port), "--workers", "1")
    try:
        lines = read_until(proc, "Ctrl-C stops it.", time.monotonic() + START_DEADLINE)
        api = next(line for line in lines if line.startswith("API: ")).removeprefix("API: ")
        key = next(line for line in lines if "API key:" in line).split("API key:", 1)[1].strip()
        moto = lines[0].split(" at ", 1)[1].split(",", 1)[0]
        # How to start the event-triggered example DAG (s3_ingest watches landing-zone).
        assert f"  aws --endpoint-url {moto} s3 cp FILE s3://landing-zone/KEY" in lines
        assert any('"EventBusName": "slipstream-local"' in line for line in lines)
        assert api == f"http://127.0.0.1:{port}/api/v2"
        response = requests.get(
            f"{api}/dags", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert response.status_code == 200
        dag_ids = {d["dag_id"] for d in response.json()["dags"]}
        assert "etl_hourly" in dag_ids
        assert all(not d["is_paused"] for d in response.json()["dags"])
        assert requests.get(f"{api}/dags", timeout=30).status_code == 401
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_DEADLINE)
        assert proc.stderr is not None
        assert proc.returncode == 0, proc.stderr.read()
        assert group_members(proc.pid) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start("--port", str(port))
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert stderr.strip().splitlines() == [
        f"error: 127.0.0.1:{port} is in use; pick another with --port"
    ]
    assert stdout == ""


def serve_until_ready(*args: str) -> tuple[subprocess.Popen[str], list[str], str, str]:
    """A started ``slipstream dev``, its first lines, its API URL and its key."""
    proc = start(*args)
    lines = read_until(proc, "API key:", time.monotonic() + START_DEADLINE)
    api = next(line for line in lines if line.startswith("API: ")).removeprefix("API: ")
    return proc, lines, api, lines[-1].split("API key:", 1)[1].strip()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=STOP_DEADLINE)
    assert proc.stderr is not None
    assert proc.returncode == 0, proc.stderr.read()


def test_state_dir_keeps_keys_and_variables_across_a_restart(tmp_path) -> None:
    state = tmp_path / "state"
    flags = ("--port", str(free_port()), "--workers", "1", "--state-dir", str(state))
    proc, lines, api, key = serve_until_ready(*flags)
    try:
        assert "State: fresh; saved to" in "\n".join(lines)
        made = requests.post(
            f"{api}/variables",
            json={"key": "greeting", "value": "hi"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        stop(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert (state / "CURRENT").is_file()

    proc, lines, api, _ = serve_until_ready(*flags)
    try:
        assert any(line.startswith("State: restored ") for line in lines), lines
        # The first start's key still works, and its variable is there.
        got = requests.get(
            f"{api}/variables/greeting", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert got.status_code == 200, got.text
        assert got.json()["value"] == "hi"
        stop(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_state_dir_of_another_format_is_one_line_and_exit_2(tmp_path) -> None:
    state = tmp_path / "state"
    (state / "snapshot-old").mkdir(parents=True)
    (state / "snapshot-old" / "manifest.json").write_text('{"format": 999}')
    (state / "CURRENT").write_text("snapshot-old\n")
    proc = start("--port", str(free_port()), "--state-dir", str(state))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: ") and "format 999" in line and "format 1 " in line
    assert stdout == ""
    assert sorted(p.name for p in state.iterdir()) == ["CURRENT", "snapshot-old"]
