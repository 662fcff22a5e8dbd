"""Stopping every process a task started, in bounded time, as Airflow does.

A task command runs in its own process group, so one signal reaches all it
started. Stopping is Airflow's two steps: SIGTERM to the group, then SIGKILL
to whatever is left after a grace period (Airflow's
``killed_task_cleanup_time``). A command that traps or ignores SIGTERM, or
leaves a child that does, would otherwise hold the try (and ``dags test``)
forever and outlive it as an orphan.

The escalation runs on a thread of its own, so the caller (the timeout
watchdog, a heartbeat, Ctrl-C) is never held for the grace. That thread is
deliberately not a daemon: a process on its way out still waits for the
SIGKILL instead of leaving the group behind.

Every group a try starts is registered with the thread that runs the try, so
a timeout or a cancel stops that try's groups even when an operator's
``on_kill`` does not, and a worker told to stop can stop them all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

DEFAULT_GRACE_SECONDS = 60.0  # Airflow's [core] killed_task_cleanup_time
GRACE_ENV = ("SLIPSTREAM_KILLED_TASK_CLEANUP_TIME", "AIRFLOW__CORE__KILLED_TASK_CLEANUP_TIME")
_POLL_SECONDS = 0.05

# Re-entrant: a worker's SIGTERM handler stops every group from the main thread,
# which the signal may have interrupted inside register().
_lock = threading.RLock()
_owners: dict[int, int] = {}  # process group id -> thread id of the try that started it
_stoppers: dict[int, _Stopper] = {}


def grace_seconds() -> float:
    """Seconds between SIGTERM and SIGKILL, read when a group is stopped (tests shorten it)."""
    for name in GRACE_ENV:
        raw = os.environ.get(name)
        if raw:
            try:
                return max(0.0, float(raw))
            except ValueError:
                continue
    return DEFAULT_GRACE_SECONDS


def register(pgid: int, owner: int | None = None) -> None:
    """Record a group started by the try running on ``owner`` (default: this thread)."""
    with _lock:
        _owners[pgid] = threading.get_ident() if owner is None else owner


def unregister(pgid: int) -> None:
    with _lock:
        _owners.pop(pgid, None)


def registered(owner: int | None = None) -> list[int]:
    """Groups of one try's thread, or of every try when ``owner`` is None."""
    with _lock:
        return [g for g, o in _owners.items() if owner is None or o == owner]


def unfinished() -> list[int]:
    """Groups still registered or still inside their SIGTERM grace (a process
    about to exit kills these rather than leave them behind)."""
    with _lock:
        return sorted(set(_owners) | set(_stoppers))


def alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting to be reaped do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _live_members(pgid) != 0


def _live_members(pgid: int) -> int:
    """How many non-zombie processes are in the group; -1 when /proc cannot tell."""
    table = process_table()
    if table is None:
        return -1
    return sum(1 for state, _, group in table.values() if group == pgid and state not in "ZX")


def process_table() -> dict[int, tuple[str, int, int]] | None:
    """Every process's (state, parent pid, process group), from /proc; None without it."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table: dict[int, tuple[str, int, int]] = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces): state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2:
            table[int(entry)] = (fields[0].decode(), int(fields[1]), int(fields[2]))
    return table


class _Stopper:
    """SIGTERM now, SIGKILL at the end of the grace unless the group is gone by then."""

    def __init__(self, pgid: int, grace: float) -> None:
        self.pgid = pgid
        self.deadline = time.monotonic() + grace
        self.done = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"slipstream-stop-group-{pgid}", daemon=False
        )

    def start(self) -> None:
        _signal(self.pgid, signal.SIGTERM)
        self.thread.start()

    def _run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                if not alive(self.pgid):
                    return
                time.sleep(_POLL_SECONDS)  # a group cannot be waited on; Airflow polls too
            _signal(self.pgid, signal.SIGKILL)
        finally:
            self.done.set()  # first: a waiter may hold _lock (see above)
            with _lock:
                if _stoppers.get(self.pgid) is self:
                    del _stoppers[self.pgid]


def terminate(pgid: int, grace: float | None = None) -> threading.Event:
    """Stop the group: SIGTERM at once, SIGKILL after ``grace`` seconds (default:
    ``grace_seconds()``). Returns an event set once the group is gone or killed;
    a second call while the first is under way joins it."""
    with _lock:
        stopper = _stoppers.get(pgid)
        if stopper is None:
            stopper = _Stopper(pgid, grace_seconds() if grace is None else grace)
            _stoppers[pgid] = stopper
            stopper.start()
    return stopper.done


def kill(pgid: int) -> None:
    """SIGKILL the group now (the try is over and something of it is still running)."""
    _signal(pgid, signal.SIGKILL)


def terminate_owned_by(owner: int, grace: float | None = None) -> list[threading.Event]:
    return [terminate(pgid, grace) for pgid in registered(owner)]


def terminate_all(grace: float | None = None, *, wait: bool = False) -> None:
    """Stop every registered group (a worker told to stop, Ctrl-C); with ``wait``,
    return only once each is gone or killed (at most the grace, plus a poll)."""
    events = [terminate(pgid, grace) for pgid in registered()]
    if wait:
        for event in events:
            event.wait()


def _signal(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
