"""Running a try's user code in a child interpreter that holds only its tenant's credentials.

The worker process holds Slipstream's own role (every table, result, bundle
and secret of the stage). With ``WorkerDeps.task_credentials`` set, user code
(the DAG file's import, the operator, its callbacks, DAG and deadline
callbacks) runs instead in a child running ``chalicelib.runtime.isolated_child``:
forked from a template interpreter started clean without any credentials
(``isolation_template``), or spawned with ``subprocess`` when that is off or
fails (never a fork of the worker, which would copy its memory, keys
included), with a clean environment and the tenant's credentials only, in a
session of its own so one signal stops it all. The
parent stays the only one that claims, heartbeats, records and hands off; it
serves the child's calls for the run's XComs and the other ports
(``isolation_broker``), writes the child's log lines into the try's sink,
and enforces an outer deadline and the heartbeat's cancel by stopping the
child's process group. Before the first child the parent makes itself
non-dumpable, so a same-uid child cannot read ``/proc/<parent>/environ`` (the
Lambda's initial environment holds the worker role's keys) nor ptrace it.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import datetime as dt
import logging
import os
import pickle
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.core.retries import decide_after_failure
from chalicelib.runtime import isolation_template, process_groups
from chalicelib.runtime.isolation_broker import Services, handle_frame
from chalicelib.runtime.isolation_codec import (
    ProtocolError,
    decode_frame,
    read_bytes,
    write_bytes,
    write_json,
)
from chalicelib.runtime.outcome import TryResult
from chalicelib.runtime.task_log import TaskLogSink

log = logging.getLogger("slipstream.worker")

CHILD_MODULE = "chalicelib.runtime.isolated_child"
CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# What a child's environment may carry over from the worker's: how to find
# programs and modules, the locale and region, and the settings its secrets
# lookup reads (never table names, queues or credentials).
PASSED_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "HOME",
    "TMPDIR",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "SLIPSTREAM_STAGE",
    "SLIPSTREAM_SECRETS_PREFIX",
    "SLIPSTREAM_REGION",
    "SLIPSTREAM_ENDPOINT_URL",
    "SLIPSTREAM_CACHE_SECONDS",
    "SLIPSTREAM_KILLED_TASK_CLEANUP_TIME",
    "AIRFLOW__CORE__KILLED_TASK_CLEANUP_TIME",
)
# Past the task's execution_timeout (enforced in the child), how long the
# parent waits before it stops the child itself; and, after a cancel, how long
# the child has to stop its task cooperatively (on_kill, callbacks, result).
GRACE_ENV = "SLIPSTREAM_ISOLATION_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 60.0
_POLL_SECONDS = 0.1
_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4

TaskCredentials = Callable[[str], Mapping[str, str]]


def grace_seconds() -> float:
    try:
        return max(0.1, float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_SECONDS)))
    except ValueError:
        return DEFAULT_GRACE_SECONDS


# ------------------------------------------------------------------ process set-up


def make_non_dumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)`` on Linux; False where it cannot be done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def is_dumpable() -> bool | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))


def child_env(
    credentials: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the child's environment holds: ``PASSED_ENV``, a PYTHONPATH that
    finds Slipstream, and the tenant's credentials, with every other way boto3
    finds credentials (files, the container or instance endpoint) shut.
    ``run_child`` hands the credentials over the channel instead of exec's
    environment: ``/proc/<pid>/environ`` would show them to any process of
    the same user until the child made itself non-dumpable."""
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in PASSED_ENV if source.get(name)}
    missing = [k for k in CREDENTIAL_KEYS if not isinstance(credentials.get(k), str)]
    if missing:
        raise ValueError(f"task credentials lack {', '.join(missing)}")
    env.update({k: credentials[k] for k in CREDENTIAL_KEYS})
    env["PYTHONPATH"] = os.pathsep.join(_import_path())
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _import_path() -> list[str]:
    """Where the worker imports from (Slipstream, its dependencies), bundles excepted."""
    root = str(Path(__file__).resolve().parents[2])
    found = [root]
    for entry in sys.path:
        bundle = "slipstream-bundles" in entry
        if entry and entry not in found and os.path.isdir(entry) and not bundle:
            found.append(entry)
    return found


def tenant_bundles(bundles: Any, tenant: str | None) -> Any:
    """A view of the bundle store that extracts into this tenant's own folder,
    after removing every other tenant's (a warm container may have served one):
    a same-uid child could otherwise read another tenant's code."""
    if not hasattr(bundles, "cache_dir") or not hasattr(bundles, "load"):
        raise TypeError(f"isolated tries need a BundleStore, not {type(bundles).__name__}")
    global _last_tenant
    base = Path(bundles.cache_dir) / "isolated"
    own = base / tenant_folder(tenant)
    with _tenant_lock:
        switched = _last_tenant != own.name
        _last_tenant = own.name
    if base.is_dir():
        for entry in base.iterdir():
            # after another tenant's child, even this tenant's folder may hold
            # files that child planted: extract afresh
            if entry != own or switched:
                shutil.rmtree(entry, ignore_errors=True)
    view = copy.copy(bundles)
    view.cache_dir = own
    return view


_last_tenant: str | None = None  # whose child this process started last
_tenant_lock = threading.Lock()


def tenant_folder(tenant: str | None) -> str:
    name = tenant or "default"
    return "tenant-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ------------------------------------------------------------------ one child


@dataclass
class ChildOutcome:
    """How a child ended: its final answer, or why there is none."""

    answer: dict[str, Any] | None = None
    cancelled: str | None = None  # the cancel's reason, when the child was stopped for it
    timed_out: bool = False
    died: str | None = None  # "exit code 3", "signal SIGKILL"
    protocol: str | None = None  # what was malformed
    unstarted: str | None = None  # why no child could be started


def run_child(
    job: dict[str, Any],
    env: Mapping[str, str],
    services: Services,
    *,
    sink: TaskLogSink | None = None,
    cancel: Any = None,
    deadline: float | None = None,
) -> ChildOutcome:
    """Start the child, serve it until it answers or ends, and make sure it is gone.

    ``deadline`` is in seconds from now (None: none); ``cancel`` a TryCancel
    whose ``reason`` the parent watches.
    """
    make_non_dumpable()
    env = dict(env)
    job = {**job, "credentials": {k: env.pop(k) for k in CREDENTIAL_KEYS if k in env}}
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    try:
        proc = _start(env, (to_child_r, from_child_w))
    except (OSError, ValueError) as exc:  # no processes or memory left, a bad setting
        os.close(to_child_w)
        os.close(from_child_r)
        return ChildOutcome(unstarted=f"{type(exc).__name__}: {exc}")
    finally:
        os.close(to_child_r)  # the child's ends: only the child keeps them open
        os.close(from_child_w)
    outbound = os.fdopen(to_child_w, "wb", buffering=0)
    inbound = os.fdopen(from_child_r, "rb", buffering=0)
    frames: queue.Queue[tuple[str, Any]] = queue.Queue()
    reader = threading.Thread(target=_read_frames, args=(inbound, frames), daemon=True)
    reader.start()
    outcome = ChildOutcome()
    try:
        with contextlib.suppress(BrokenPipeError):
            write_bytes(outbound, pickle.dumps(job))
        outcome = _serve(proc, outbound, frames, services, sink, cancel, deadline)
        return outcome
    finally:
        _stop(proc, patient=outcome.answer is not None)
        with contextlib.suppress(OSError):
            outbound.close()
        reader.join(5)
        with contextlib.suppress(OSError):
            inbound.close()


def _start(env: dict[str, str], fds: tuple[int, int]) -> Any:
    """A fork of the template interpreter (``isolation_template``), or, when it
    is off or failed, a fresh interpreter; a session of its own either way."""
    forked = isolation_template.fork_child(env, fds)
    if forked is not None:
        return forked
    return subprocess.Popen(
        # -s: no user site-packages, which an earlier child could have planted
        [sys.executable, "-s", "-m", CHILD_MODULE, *map(str, fds)],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        pass_fds=fds,
    )


def _read_frames(inbound: Any, frames: queue.Queue[tuple[str, Any]]) -> None:
    try:
        while (body := read_bytes(inbound)) is not None:
            frames.put(("frame", decode_frame(body)))
    except ProtocolError as exc:
        frames.put(("bad", str(exc)))
        return
    except OSError:
        pass
    frames.put(("eof", None))


def _serve(
    proc: Any,  # a Popen or an isolation_template.ForkedChild
    outbound: Any,
    frames: queue.Queue[tuple[str, Any]],
    services: Services,
    sink: TaskLogSink | None,
    cancel: Any,
    deadline: float | None,
) -> ChildOutcome:
    started = time.monotonic()
    stop_at: float | None = None  # when the child's group gets SIGTERM
    exited_at: float | None = None
    outcome = ChildOutcome()
    while True:
        try:
            kind, frame = frames.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            kind, frame = "", None
        if kind == "bad":
            return ChildOutcome(protocol=frame)
        if kind == "" and proc.poll() is not None:
            # Ended, and its channel is still open: something it started holds the
            # descriptor. Frames it wrote before it ended arrive first.
            exited_at = exited_at or time.monotonic()
            if time.monotonic() - exited_at > 2.0:
                kind = "eof"
        if kind == "eof":
            proc.wait()
            if outcome.cancelled or outcome.timed_out:
                return outcome
            return ChildOutcome(died=describe_exit(proc.returncode))
        if kind == "frame":
            try:
                done = handle_frame(frame, outbound, services, sink)
            except ProtocolError as exc:
                return ChildOutcome(protocol=str(exc))
            if done is not None:
                outcome.answer = done
                return outcome
        now = time.monotonic()
        reason = getattr(cancel, "reason", None)
        if reason and outcome.cancelled is None and not outcome.timed_out:
            outcome.cancelled = reason
            with contextlib.suppress(OSError):
                write_json(outbound, {"cancel": reason})  # the child stops its task first
            stop_at = now + grace_seconds()
        if deadline is not None and not outcome.timed_out and now - started > deadline:
            outcome.timed_out = outcome.cancelled is None
            stop_at = now
        if stop_at is not None and now >= stop_at:
            process_groups.terminate(proc.pid, min(grace_seconds(), 10.0))
            stop_at = None


def describe_exit(code: int | None) -> str:
    if code == isolation_template.UNKNOWN_EXIT:
        return "exit status unknown: its template interpreter ended first"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _stop(proc: Any, *, patient: bool) -> None:
    """The child's group, and groups its task started, are gone before we return
    (``patient``: a child that answered gets a moment to exit by itself)."""
    groups = {proc.pid, *descendant_groups(proc.pid)}
    if patient and proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=min(grace_seconds(), 10.0))
    for pgid in groups:
        process_groups.kill(pgid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def descendant_groups(pid: int) -> set[int]:
    """Process groups of ``pid``'s descendants (a BashOperator's command runs in
    its own group), read from /proc; empty where there is none."""
    table = process_groups.process_table() or {}
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {p for p, (_, ppid, _) in table.items() if ppid in frontier}
        found |= {table[p][2] for p in children}
        frontier = children - frontier
    return found - {os.getpgrp()}


# ------------------------------------------------------------------ outcomes


def failed_try(
    spec: Any,
    run: Any,
    task_id: str,
    try_number: int,
    retry_base: int,
    start: dt.datetime,
    now: dt.datetime,
    error: str,
) -> TryResult:
    """A try that ended without the task's own outcome, through the normal retry rules."""
    decision = decide_after_failure(
        spec.task(task_id),
        dag_id=spec.dag_id,
        logical_date=run.logical_date,
        try_number=try_number,
        failed_at=now,
        retry_base=retry_base,
    )
    return TryResult(
        state=decision.state,
        start_date=start,
        end_date=now,
        next_try_at=decision.next_try_at,
        retry_delay_seconds=decision.delay_seconds,
        error=error,
    )
