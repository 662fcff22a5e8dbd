"""The template interpreter ("zygote") that isolated tries are forked from.

``python -s -m chalicelib.runtime.isolation_zygote SOCK``: started by the
worker (``isolation_template``) with a child's clean environment and no
credentials. It makes itself non-dumpable, imports what every child needs
(the second and more an interpreter would spend per try), then serves its
Unix socket (``SOCK_SEQPACKET``, one message per request or report):

- a request carries a try's two pipe ends (``SCM_RIGHTS``); the zygote forks,
  closes its copies of them and reports ``pid <pid>`` (or ``fail <why>``);
- when it reaps a child it reports ``exit <pid> <code>`` (``-N`` for signal N,
  as ``Popen.returncode``).

The forked child leads a session of its own, closes the zygote's socket and
runs ``isolated_child.main`` on the pipes: its job, the tenant's credentials
included, arrives over them after the fork, so the zygote never holds any
tenant's credentials nor runs any user code; each child is a fork of the same
clean template, and nothing of one try reaches the next.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import sys
import traceback

# Imported before the first fork: what isolated_child imports up front, and
# what every try uses (the runtime's executor and templating, jinja2,
# pendulum, pydantic, the spec models, the operators' base, boto3 for the
# secrets lookup). Imports only: no session, no client, no credentials.
PRELOAD = (
    "chalicelib.runtime.isolated_child",
    "chalicelib.runtime.isolation",
    "chalicelib.runtime.executing",
    "chalicelib.runtime.templating",
    "chalicelib.runtime.task_log",
    "chalicelib.runtime.dag_states",
    "chalicelib.runtime.dag_triggers",
    "chalicelib.runtime.hitl",
    "chalicelib.runtime.outlets",
    "chalicelib.runtime.sensor_wakeups",
    "chalicelib.runtime.dag_callbacks",
    "chalicelib.runtime.deadline_callbacks",
    "chalicelib.sdk",
    "chalicelib.sdk.loader",
    "chalicelib.sdk.baseoperator",
    "chalicelib.core.spec",
    "operators.python",
    "operators.bash",
    "operators.empty",
    "jinja2",
    "pendulum",
    "pydantic",
    "boto3",
)
_REQUEST_BYTES = 16


def _send(sock: socket.socket, text: str) -> None:
    sock.send(text.encode()[:4000])


def _run_child(sock: socket.socket, fds: list[int], own: tuple[int, ...], ready: int) -> None:
    """In the forked child: a session of its own, nothing of the zygote's
    plumbing, then the child's main on the try's pipes. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        for fd in own:
            os.close(fd)
        os.write(ready, b"1")  # the session exists: signals to the group reach it
        os.close(ready)
        from chalicelib.runtime import isolated_child

        sys.argv = [isolated_child.__file__, str(fds[0]), str(fds[1])]
        code = isolated_child.main(sys.argv)
        isolated_child.exit_now(code)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        os._exit(code)


def _fork(sock: socket.socket, fds: list[int], own: tuple[int, ...]) -> int:
    ready_r, ready_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(ready_r)
        os.close(ready_w)
        raise
    if pid == 0:
        os.close(ready_r)
        _run_child(sock, fds, own, ready_w)
    os.close(ready_w)
    with contextlib.suppress(OSError):
        os.read(ready_r, 1)  # empty when the child died first: its exit is reported anyway
    os.close(ready_r)
    return pid


def _reap(sock: socket.socket, live: set[int]) -> None:
    while live:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            live.clear()
            return
        if pid == 0:
            return
        live.discard(pid)
        _send(sock, f"exit {pid} {os.waitstatus_to_exitcode(status)}")


def serve(sock: socket.socket) -> None:
    """Fork a child per request and report pids and exits, until the worker hangs up."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears it
    signal.set_wakeup_fd(wake_w)
    live: set[int] = set()
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [], 1.0)
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
        _reap(sock, live)
        if sock.fileno() not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(sock, _REQUEST_BYTES, 2)
        if not message:
            return  # the worker is gone
        try:
            if message != b"fork" or len(fds) != 2:
                _send(sock, "fail a request holds the word fork and two descriptors")
                continue
            try:
                pid = _fork(sock, fds, (wake_r, wake_w))
            except OSError as exc:
                _send(sock, f"fail {type(exc).__name__}: {exc}")
                continue
            live.add(pid)
        finally:
            for fd in fds:  # only the child keeps the try's pipes
                os.close(fd)
        _send(sock, f"pid {pid}")


def main(argv: list[str]) -> int:
    from chalicelib.runtime.isolation import make_non_dumpable

    make_non_dumpable()
    sock = socket.socket(fileno=int(argv[1]))
    sock.set_inheritable(False)
    for name in PRELOAD:
        importlib.import_module(name)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the worker is gone
        serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
