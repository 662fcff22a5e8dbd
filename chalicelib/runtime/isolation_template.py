"""The worker's side of the template interpreter isolated tries are forked from.

Spawning a child per try costs a second or more, nearly all of it importing
Slipstream's runtime. Forking the worker instead is not allowed: the fork
would copy the worker's memory, its credentials included. So the worker
starts one template interpreter (``isolation_zygote``) on its first isolated
try, with a child's clean environment minus the credentials, and asks it for
a fork per try, handing it the try's two pipe ends over a Unix socket. The
job and the tenant's credentials then travel over the pipes, after the fork,
as with a spawned child.

``SLIPSTREAM_ISOLATION_TEMPLATE`` (``on``, the default, or ``off``) chooses.
A template that cannot start, died, or failed a fork is dropped: that try is
spawned as before, and the next one starts a new template. One template per
worker process, killed when the process exits; a template whose environment
no longer matches the child's (a setting changed) is replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("slipstream.worker")

TEMPLATE_ENV = "SLIPSTREAM_ISOLATION_TEMPLATE"
TEMPLATE_MODULE = "chalicelib.runtime.isolation_zygote"
# How long a fork may take to be reported; the first one waits for the
# template's imports (a few seconds on a loaded machine).
FORK_TIMEOUT_SECONDS = 60.0
# A child whose template died before reporting its exit: it was reaped by
# someone else, and how it ended is not known.
UNKNOWN_EXIT = 1000


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether isolated children are forked from the template (read per try)."""
    source = os.environ if environ is None else environ
    value = source.get(TEMPLATE_ENV, "on").strip().lower()
    if value in ("on", "1", "true", "yes", ""):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ValueError(f"{TEMPLATE_ENV} must be on or off, not {value!r}")


class ForkedChild:
    """A child forked by the template, with ``Popen``'s ``pid``, ``returncode``,
    ``poll`` and ``wait``: its exit status comes from the template, which reaps it."""

    def __init__(self, pid: int, template: Template):
        self.pid = pid
        self.returncode: int | None = None
        self._template = template

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._template.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            self._template.wait_for_exit(min(left, 0.5) if left is not None else 0.5)
        return self.returncode  # type: ignore[return-value]


class Template:
    """One running template interpreter and the thread that reads its reports."""

    def __init__(self, env: Mapping[str, str]):
        self.env = dict(env)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-m", TEMPLATE_MODULE, str(theirs.fileno())],
                env=self.env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.dead = False
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="isolation-template", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        try:
            while message := self.sock.recv(4096):
                kind, _, rest = message.decode(errors="replace").partition(" ")
                if kind == "exit":
                    pid, _, code = rest.partition(" ")
                    with self._changed:
                        self._exits[int(pid)] = int(code)
                        self._changed.notify_all()
                else:
                    self._replies.put(f"{kind} {rest}")
        except (OSError, ValueError):
            pass
        with self._changed:
            self.dead = True
            self._changed.notify_all()
        self._replies.put(None)

    def fork(self, fds: tuple[int, int]) -> ForkedChild | None:
        """A child running ``isolated_child`` on ``fds``; None when the template
        failed (the caller spawns instead and drops this template)."""
        try:
            socket.send_fds(self.sock, [b"fork"], list(fds))
            reply = self._replies.get(timeout=FORK_TIMEOUT_SECONDS)
        except (OSError, queue.Empty) as exc:
            log.warning("the isolation template did not fork (%s): spawning", exc)
            return None
        if reply is None or not reply.startswith("pid "):
            log.warning("the isolation template did not fork (%s): spawning", reply or "it ended")
            return None
        return ForkedChild(int(reply[4:]), self)

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            if pid in self._exits:
                return self._exits.pop(pid)
            if self.dead and not _running(pid):
                return UNKNOWN_EXIT
        return None

    def wait_for_exit(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def close(self) -> None:
        """Stop the template (it holds no secret; its forks already running go on)."""
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie nobody reaps (its template died and
    the new parent does not wait for orphans) has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return sys.platform != "linux"
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


_template: Template | None = None
_lock = threading.Lock()


def fork_child(env: Mapping[str, str], fds: tuple[int, int]) -> ForkedChild | None:
    """A child forked from this process's template for a try whose clean
    environment (credentials excepted) is ``env``; None: spawn it instead."""
    global _template
    if not enabled():
        return None
    with _lock:
        if _template is not None and (_template.dead or _template.proc.poll() is not None):
            log.warning("the isolation template ended: spawning this try, restarting it next")
            _drop()
            return None
        if _template is not None and _template.env != dict(env):
            _drop()  # a setting changed: children must see the environment of today's spawn
        if _template is None:
            try:
                _template = Template(env)
            except OSError as exc:
                log.warning("could not start the isolation template (%s): spawning", exc)
                return None
        child = _template.fork(fds)
        if child is None:
            _drop()  # never reused after a failed fork
        return child


def current() -> Template | None:
    """This process's template, if one runs (tests read its pid)."""
    return _template


def _drop() -> None:
    global _template
    if _template is not None:
        _template.close()
        _template = None


def shutdown() -> None:
    with _lock:
        _drop()


def _forget_in_fork() -> None:
    """A fork of the worker must not share its template's socket (nor a lock
    another thread held at the fork)."""
    global _template, _lock
    _lock = threading.Lock()
    if _template is not None:
        with contextlib.suppress(OSError):
            _template.sock.close()
    _template = None


atexit.register(shutdown)
os.register_at_fork(after_in_child=_forget_in_fork)
