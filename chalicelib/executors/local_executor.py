"""Play Lambda on a laptop: a pool of warm worker processes fed from a queue.

Lambda keeps execution environments warm, so a hand-off in AWS costs an
invoke, not an interpreter start. The local stack keeps N long-lived
``local_worker`` processes for the same reason: ``dispatch`` only queues the
message, a free process takes it over a pipe, and a process that dies (a
segfault, ``os._exit`` in user code, the OOM killer) is replaced. Each process
is a separate interpreter, as a Lambda environment is, so a task cannot
corrupt the scheduler's memory or another task's.

The try a dead process was running is not retried here: like a Lambda
timeout, it is left to the reaper, which finds its stale heartbeat (or to the
stalled run's reconciliation, for a try that died before its first beat) and
applies the task's retries.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import DispatchError, DispatchHandle, Executor
from chalicelib.runtime import process_groups

log = logging.getLogger("slipstream.executors.local")

WORKER_MODULE = "chalicelib.executors.local_worker"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class WorkerStatus:
    """One message's answer from a worker process (or why there was none)."""

    handle: DispatchHandle
    message: WorkerMessage
    ok: bool
    error: str | None
    pid: int | None
    relayed: tuple[WorkerMessage, ...] = ()  # tries the worker's hand-off started
    state: str | None = None  # the try's outcome, when the worker told it


StatusCallback = Callable[[WorkerStatus], None]
_STOP = object()
_KILL_MARGIN = 5.0  # past the task processes' grace, for the worker itself to exit


class WorkerStartError(DispatchError):
    """A worker process did not say it was ready (import error, bad handler, hang)."""


class _Process:
    """One warm worker: a subprocess and the pipes of its line protocol."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def await_ready(self, timeout: float) -> None:
        """Read the ready line; a process silent for ``timeout`` seconds is killed."""
        killer = threading.Timer(timeout, self.kill)
        killer.daemon = True
        killer.start()
        try:
            line = self._read_line()
        finally:
            killer.cancel()
        if not line or not json.loads(line).get("ready"):
            code = self.popen.wait()
            raise WorkerStartError(
                f"local worker {self.pid} did not start (exit code {code}); "
                "its stderr above says why"
            )

    def exchange(self, message: WorkerMessage) -> dict[str, Any] | None:
        """Send one message and read its status; None when the process died."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(message.model_dump_json() + "\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None
        line = self._read_line()
        if not line:
            return None
        status: dict[str, Any] = json.loads(line)
        return status

    def close(self, timeout: float) -> None:
        """End of input ends a worker; kill it if it does not go within ``timeout``."""
        try:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
        except OSError:
            pass
        try:
            self.popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            self.kill()
            self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()

    def terminate(self) -> None:
        """Ask the worker to stop: it stops its try's task processes, then exits."""
        if self.alive():
            self.popen.terminate()

    def wait_or_kill(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            self.kill()

    def _read_line(self) -> str:
        assert self.popen.stdout is not None
        try:
            return self.popen.stdout.readline()
        except (OSError, ValueError):
            return ""


class LocalExecutor(Executor):
    """Thread-safe: any thread may dispatch; one feeder thread per worker process."""

    kind = "local"

    def __init__(
        self,
        workers: int = 2,
        *,
        handler: str | None = None,
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        on_status: StatusCallback | None = None,
        start_timeout: float = 60.0,
        python: str = sys.executable,
    ) -> None:
        """``handler`` is ``module:function`` for tests (default: the real worker).
        ``env`` defaults to this process's environment at start, so workers reach
        the same moto server through ``AWS_ENDPOINT_URL``/``SLIPSTREAM_ENDPOINT_URL``."""
        if workers < 1:
            raise ValueError(f"LocalExecutor needs at least 1 worker, not {workers}")
        self.workers = workers
        self.handler = handler
        self._env = dict(env) if env is not None else None
        self._extra_env = dict(extra_env or {})
        self._on_status = on_status
        self._start_timeout = start_timeout
        self._python = python
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._processes: list[_Process | None] = []
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._busy = 0
        self._restarts = 0
        self._started = False
        self._stopping = False
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the pool and wait until every worker is warm; a no-op when running."""
        with self._lock:
            if self._stopping:
                raise DispatchError("this LocalExecutor was stopped; make a new one")
            if self._started:
                return
            self._started = True
            spawned = [self._spawn() for _ in range(self.workers)]
            try:
                for process in spawned:
                    process.await_ready(self._start_timeout)
            except WorkerStartError:
                for process in spawned:
                    process.kill()
                    process.close(0)
                self._started = False
                raise
            self._processes = list(spawned)
            for slot in range(self.workers):
                thread = threading.Thread(
                    target=self._feed, args=(slot,), name=f"local-worker-{slot}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the workers finish what is queued, then end them; after ``timeout``
        seconds stop the stragglers (their tries are left to the reaper): SIGTERM,
        on which a worker stops its task processes within their grace, then SIGKILL."""
        with self._lock:
            if not self._started or self._stopping:
                self._stopping = True
                return
            self._stopping = True
        deadline = time.monotonic() + timeout
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            stragglers = self._live_processes()
            for process in stragglers:
                process.terminate()
            grace_end = time.monotonic() + process_groups.grace_seconds() + _KILL_MARGIN
            for process in stragglers:
                process.wait_or_kill(grace_end - time.monotonic())
        for thread in self._threads:
            thread.join()
        for process in self._live_processes():
            process.close(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> LocalExecutor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the port --------------------------------------------------------------

    def dispatch(self, message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        """Queue the try and return at once; starts the pool on first use."""
        if not self._started:
            self.start()
        with self._lock:
            if self._stopping:
                raise DispatchError(f"local executor stopped; {message.label} not started")
            handle = DispatchHandle(self.kind, f"local-{next(self._ids)}")
            self._pending += 1
        self._queue.put((handle, message))
        return handle

    # -- observation (tests, the local stack, the benchmark) ------------------

    def wait_idle(self, timeout: float) -> bool:
        """True once every dispatched message has its status; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def busy_count(self) -> int:
        with self._lock:
            return self._busy

    @property
    def pending_count(self) -> int:
        """Dispatched and not yet answered, running or waiting."""
        with self._lock:
            return self._pending

    @property
    def restarts(self) -> int:
        with self._lock:
            return self._restarts

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._processes if p is not None]

    # -- internals -------------------------------------------------------------

    def _feed(self, slot: int) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            handle, message = item
            with self._lock:
                self._busy += 1
            try:
                status = self._run(slot, handle, message)
            finally:
                with self._lock:
                    self._busy -= 1
            if not status.ok:
                log.warning("local try %s failed: %s", message.label, status.error)
            if self._on_status is not None:
                try:
                    self._on_status(status)
                except Exception:  # a listener must not stop a feeder
                    log.exception("on_status listener failed for %s", message.label)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _run(self, slot: int, handle: DispatchHandle, message: WorkerMessage) -> WorkerStatus:
        process = self._processes[slot]
        if process is None or not process.alive():
            if self._stopping:
                return WorkerStatus(
                    handle, message, False, "local executor stopped before the try started", None
                )
            try:
                process = self._replace(slot)
            except WorkerStartError as exc:
                return WorkerStatus(handle, message, False, str(exc), None)
        answer = process.exchange(message)
        if answer is None:
            code = process.popen.wait()
            error = f"local worker {process.pid} exited with code {code} running {message.label}"
            if not self._stopping:
                try:
                    self._replace(slot)
                except WorkerStartError as exc:
                    error += f"; its replacement did not start: {exc}"
            return WorkerStatus(handle, message, False, error, process.pid)
        ok = bool(answer.get("ok"))
        relayed = tuple(WorkerMessage.model_validate(m) for m in answer.get("dispatch", ()))
        for follow_up in relayed:
            try:
                self.dispatch(follow_up, ExecutorSpec(kind="local"))
            except DispatchError as exc:
                # Stopping: the try stays queued in the store, and the scheduler's
                # reconciliation dispatches it again when a stack next runs.
                log.info("%s", exc)
        state = answer.get("state")
        return WorkerStatus(
            handle,
            message,
            ok,
            None if ok else str(answer.get("error")),
            process.pid,
            relayed,
            state if isinstance(state, str) else None,
        )

    def _replace(self, slot: int) -> _Process:
        old = self._processes[slot]
        if old is not None:
            old.close(0)
        process = self._spawn()
        with self._lock:
            self._processes[slot] = process
            self._restarts += 1
        process.await_ready(self._start_timeout)
        return process

    def _spawn(self) -> _Process:
        env = dict(self._env if self._env is not None else os.environ)
        env.update(self._extra_env)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + path if path else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        args = [self._python, "-m", WORKER_MODULE]
        if self.handler:
            args += ["--handler", self.handler]
        popen = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env=env,
            cwd=str(PROJECT_ROOT),
        )
        return _Process(popen)

    def _live_processes(self) -> list[_Process]:
        with self._lock:
            return [p for p in self._processes if p is not None]
