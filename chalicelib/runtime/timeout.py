"""Enforcing ``execution_timeout`` on a try, on the main thread or any other.

On the main thread a SIGALRM timer interrupts the task, as Airflow does. Tries
run by a thread pool (local runs) cannot use signals, so one shared watchdog
thread raises ``TaskTimeout`` inside the task's thread with
``PyThreadState_SetAsyncExc``. Either way ``on_timeout`` (the operator's
``on_kill``) runs first, so a subprocess is killed before Python unwinds.

Limits: an asynchronous exception is only seen when the thread next runs
Python bytecode, so a thread blocked in C code (a long ``time.sleep``, a socket
read) notices when that call returns; killing the subprocess in ``on_kill`` is
what unblocks a BashOperator. Task code that catches ``BaseException`` can
swallow the interruption, but the try still ends as timed out.

The same machinery cancels a try from another thread (``TryCancel``: the run
it belongs to timed out, the try was marked failed, Ctrl-C), and both stop
the process groups the try registered (``process_groups``): SIGTERM, then
SIGKILL after a grace, so no task process outlives its try.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from chalicelib.runtime import process_groups
from chalicelib.sdk.exceptions import TaskTimeout

log = logging.getLogger("slipstream.task")

OnTimeout = Callable[[], None]


def timeout_message(seconds: float) -> str:
    return f"Task exceeded its execution_timeout of {seconds:g}s"


class TaskCancelled(TaskTimeout):
    """The try was stopped from outside (its run ended, it was marked, Ctrl-C)."""


class _Guard:
    """The state one timed or cancellable try shares with whoever may stop it."""

    def __init__(self, thread_id: int, deadline: float, on_timeout: OnTimeout | None):
        self.thread_id = thread_id
        self.deadline = deadline
        self.on_timeout = on_timeout
        # Re-entrant: the SIGALRM handler may run on the main thread while it holds it.
        self.lock = threading.RLock()
        self.done = False
        self.fired = False
        self.cancelled: str | None = None  # the reason, when a TryCancel fired it


class _Watchdog:
    """One daemon thread serving every timed try of the process, nearest deadline first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, guard: _Guard) -> None:
        with self._cond:
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="slipstream-timeout-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, guard = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            _expire(guard)


def _expire(guard: _Guard, cancelled: str | None = None) -> None:
    with guard.lock:
        if guard.done or guard.fired:
            return
        guard.fired = True
        guard.cancelled = cancelled
        on_timeout = guard.on_timeout
    _stop_processes(guard.thread_id, on_timeout)
    with guard.lock:
        # The try may have finished while on_kill ran; then nothing must be raised
        # in a thread that has moved on to other work.
        if not guard.done:
            _set_async_exc(guard.thread_id, TaskCancelled if cancelled else TaskTimeout)


def _stop_processes(thread_id: int, on_timeout: OnTimeout | None) -> None:
    """The operator's on_kill, then every process group the try registered, in
    case on_kill missed one (both start the SIGTERM-then-SIGKILL of a group once)."""
    if on_timeout is not None:
        try:
            on_timeout()
        except Exception:
            log.exception("on_kill failed while stopping a task")
    process_groups.terminate_owned_by(thread_id)


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None
    )


_WATCHDOG = _Watchdog()


class TryCancel:
    """Stops a running try from another thread, as a timeout would, with a reason.

    Handed to ``execution_timeout`` (through ``TryRequest.cancel``); a cancel
    that comes before the try reaches its operator takes effect as it does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guard: _Guard | None = None
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            guard = self._guard
        if guard is not None:
            _expire(guard, cancelled=reason)

    def _attach(self, guard: _Guard) -> None:
        """Watch ``guard`` from now on; a try cancelled already does not start."""
        with self._lock:
            if self.reason is not None:
                raise TaskCancelled(f"Task stopped: {self.reason}")
            self._guard = guard


class execution_timeout:
    """``with execution_timeout(seconds, on_timeout=op.on_kill): op.execute(ctx)``.

    ``seconds=None`` (no timeout) and no ``cancel`` costs nothing. Leaving the
    block after the deadline fired always raises ``TaskTimeout`` (after a
    cancel ``TaskCancelled``), even if the task code caught it.
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        on_timeout: OnTimeout | None = None,
        cancel: TryCancel | None = None,
    ):
        self.seconds = seconds
        self.on_timeout = on_timeout
        self.cancel = cancel
        self._guard: _Guard | None = None
        self._old_handler: Any = None
        self._main = False

    def __enter__(self) -> execution_timeout:
        if self.seconds is None and self.cancel is None:
            return self
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"execution_timeout must be positive, got {self.seconds}")
        deadline = time.monotonic() + (self.seconds if self.seconds is not None else 0.0)
        guard = _Guard(threading.get_ident(), deadline, self.on_timeout)
        if self.cancel is not None:
            self.cancel._attach(guard)  # before any timer is armed: it may raise
        self._guard = guard
        try:
            if self.seconds is not None:
                if threading.current_thread() is threading.main_thread():
                    self._old_handler = signal.signal(signal.SIGALRM, self._on_alarm)
                    self._main = True
                    signal.setitimer(signal.ITIMER_REAL, self.seconds)
                else:
                    _WATCHDOG.watch(guard)
        except BaseException:  # a cancel that landed in here: __exit__ will not run
            self.__exit__(None, None, None)
            raise
        return self

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        guard = self._guard
        if guard is None:
            return
        with guard.lock:
            if guard.done or guard.fired:
                return
            guard.fired = True
        _stop_processes(guard.thread_id, self.on_timeout)
        raise TaskTimeout(timeout_message(self.seconds or 0))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        guard = self._guard
        if guard is None:
            return
        if self._main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old_handler)
        with guard.lock:
            guard.done = True
            fired = guard.fired
            # The watchdog keeps the guard until its deadline; do not keep the operator too.
            guard.on_timeout = None
            cancelled = guard.cancelled
        if not fired:
            return
        if not self._main or cancelled:
            _set_async_exc(guard.thread_id, None)  # drop it if not delivered yet
        if cancelled:
            if isinstance(exc, TaskCancelled) and exc.args and exc.args[0]:
                return
            raise TaskCancelled(f"Task stopped: {cancelled}") from exc
        if isinstance(exc, TaskTimeout):
            if not exc.args or not exc.args[0]:
                raise TaskTimeout(timeout_message(self.seconds or 0)).with_traceback(tb)
            return
        raise TaskTimeout(timeout_message(self.seconds or 0)) from exc
