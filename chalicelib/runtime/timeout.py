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

from chalicelib.sdk.exceptions import TaskTimeout

log = logging.getLogger("slipstream.task")

OnTimeout = Callable[[], None]


def timeout_message(seconds: float) -> str:
    return f"Task exceeded its execution_timeout of {seconds:g}s"


class _Guard:
    """The state one timed try shares with the watchdog, under a lock."""

    def __init__(self, thread_id: int, deadline: float, on_timeout: OnTimeout | None):
        self.thread_id = thread_id
        self.deadline = deadline
        self.on_timeout = on_timeout
        self.lock = threading.Lock()
        self.done = False
        self.fired = False


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


def _expire(guard: _Guard) -> None:
    with guard.lock:
        if guard.done:
            return
        guard.fired = True
        on_timeout = guard.on_timeout
    if on_timeout is not None:
        try:
            on_timeout()
        except Exception:
            log.exception("on_kill failed while stopping a timed-out task")
    with guard.lock:
        # The try may have finished while on_kill ran; then nothing must be raised
        # in a thread that has moved on to other work.
        if not guard.done:
            _set_async_exc(guard.thread_id, TaskTimeout)


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None
    )


_WATCHDOG = _Watchdog()


class execution_timeout:
    """``with execution_timeout(seconds, on_timeout=op.on_kill): op.execute(ctx)``.

    ``seconds=None`` (no timeout) costs nothing. Leaving the block after the
    deadline fired always raises ``TaskTimeout``, even if the task code caught it.
    """

    def __init__(self, seconds: float | None, *, on_timeout: OnTimeout | None = None):
        self.seconds = seconds
        self.on_timeout = on_timeout
        self._guard: _Guard | None = None
        self._old_handler: Any = None
        self._main = False

    def __enter__(self) -> execution_timeout:
        if self.seconds is None:
            return self
        if self.seconds <= 0:
            raise ValueError(f"execution_timeout must be positive, got {self.seconds}")
        self._guard = _Guard(threading.get_ident(), time.monotonic() + self.seconds, None)
        if threading.current_thread() is threading.main_thread():
            self._main = True
            self._old_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        else:
            self._guard.on_timeout = self.on_timeout
            _WATCHDOG.watch(self._guard)
        return self

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        guard = self._guard
        if guard is None or guard.done:
            return
        guard.fired = True
        if self.on_timeout is not None:
            try:
                self.on_timeout()
            except Exception:
                log.exception("on_kill failed while stopping a timed-out task")
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
        if not fired:
            return
        if not self._main:
            _set_async_exc(guard.thread_id, None)  # drop it if not delivered yet
        if isinstance(exc, TaskTimeout):
            if not exc.args or not exc.args[0]:
                raise TaskTimeout(timeout_message(self.seconds or 0)).with_traceback(tb)
            return
        raise TaskTimeout(timeout_message(self.seconds or 0)) from exc
