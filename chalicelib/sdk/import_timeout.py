"""A DAG file that hangs at import must not hang whoever imports it.

Airflow bounds each DAG file's import by ``[core] dagbag_import_timeout``
(30 s by default, 0 or less for none) with SIGALRM. Slipstream imports DAG
files on threads that cannot use signals (the local API's request threads,
a worker's pool), so it runs each import on a fresh daemon thread instead and
waits for it with a deadline. That works on any thread, costs one thread per
file, and keeps the DAG objects in this process, where they are used (a
subprocess would have to import the file twice or pickle DAGs, which the
design rules out).

When the deadline passes, the import is interrupted with an asynchronous
exception (``PyThreadState_SetAsyncExc``), which stops Python code at its next
bytecode, loops included. A thread blocked in C (a socket read, a long
``time.sleep``) notices only when that call returns; it is then abandoned as a
daemon thread: it holds no lock the caller needs and dies with the process.
Limits: a DAG file that installs signal handlers at import cannot (they need
the main thread), and an import that catches ``BaseException`` can outlive
its deadline in the background, though never the caller's wait.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("slipstream.sdk")

DEFAULT_SECONDS = 30.0  # Airflow's [core] dagbag_import_timeout
SETTING_ENV = ("SLIPSTREAM_DAGBAG_IMPORT_TIMEOUT", "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT")
# How long an interrupted import may take to unwind (its finally blocks) before
# the caller goes on without it.
_UNWIND_SECONDS = 1.0


class ImportTimedOut(Exception):
    """A DAG file's import did not finish within the timeout."""

    def __init__(self, seconds: float):
        super().__init__(f"import timed out after {seconds:g} s (dagbag_import_timeout)")
        self.seconds = seconds


class _Abandoned(BaseException):
    """Raised inside an import past its deadline; a BaseException, so that a DAG
    file's ``except Exception`` retry loop does not swallow it."""


def import_timeout_seconds(override: float | None = None) -> float | None:
    """The timeout in force: ``override`` (a CLI flag), else SLIPSTREAM_DAGBAG_IMPORT_TIMEOUT,
    else AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT, else 30 s. None: no timeout (0 or less)."""
    value = override
    if value is None:
        for name in SETTING_ENV:
            raw = os.environ.get(name, "").strip()
            if raw:
                try:
                    value = float(raw)
                except ValueError:
                    log.warning("%s=%r is not a number of seconds; ignored", name, raw)
                    continue
                break
    if value is None:
        value = DEFAULT_SECONDS
    return value if value > 0 else None


def call_with_timeout(work: Callable[[], T], seconds: float | None, *, name: str) -> T:
    """``work()``, run on its own thread when ``seconds`` is set; ImportTimedOut after it."""
    if seconds is None:
        return work()
    lock = threading.Lock()  # decides, once, between "finished" and "abandoned"
    outcome: dict[str, object] = {}
    abandoned = threading.Event()
    done = threading.Event()

    def target() -> None:
        try:
            kept: tuple[str, object]
            try:
                kept = ("value", work())
            except _Abandoned:
                return
            except BaseException as exc:  # handed to the caller, who decides
                kept = ("error", exc)
            with lock:
                if not abandoned.is_set():
                    outcome[kept[0]] = kept[1]
        except _Abandoned:
            pass  # interrupted between the work and the hand-over: nobody waits for it
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"slipstream-import-{name}", daemon=True)
    thread.start()
    if not done.wait(seconds):
        with lock:
            if not outcome:
                abandoned.set()
                # Only while the thread has not handed over, so it is alive: its id is its own.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread.ident or 0), ctypes.py_object(_Abandoned)
                )
        if abandoned.is_set():
            done.wait(_UNWIND_SECONDS)
            raise ImportTimedOut(seconds)
    if "error" in outcome:
        error = outcome["error"]
        assert isinstance(error, BaseException)
        raise error
    return outcome["value"]  # type: ignore[return-value]
