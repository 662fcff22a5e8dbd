"""Keeping a command's stdout for its own answer while tasks run in-process.

``slipstream dags test --json`` promises one JSON document on stdout, yet the
tasks it runs print, log, and start subprocesses that inherit file descriptor
1. Swapping ``sys.stdout`` alone would miss those children, so the redirect
is done at both levels: ``sys.stdout`` points at ``sys.stderr`` and fd 1 is a
duplicate of fd 2 until the run is over, then both are restored.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator


def _fd(stream: object) -> int | None:
    """The descriptor behind ``stream``, or None for in-memory streams (test runners)."""
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return None
    try:
        return int(fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (Python or a child process) to stderr meanwhile.

    Descriptor 1 is redirected only when it is a real descriptor; under an
    in-memory runner only ``sys.stdout`` is swapped, which is all such a
    runner can observe anyway.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    saved: int | None = None
    if _fd(sys.__stdout__) == 1 and _fd(sys.__stderr__) == 2:
        try:
            saved = os.dup(1)
            os.dup2(2, 1)
        except OSError:
            saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def task_logs_to_stderr() -> Iterator[None]:
    """Show the task logger's INFO lines on stderr, where ``--json`` keeps human output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    task_logger = logging.getLogger("slipstream.task")
    previous = task_logger.level
    task_logger.addHandler(handler)
    if previous == logging.NOTSET or previous > logging.INFO:
        task_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        task_logger.removeHandler(handler)
        task_logger.setLevel(previous)
