"""Waiting for a task's process group to be gone, for the tests that stop tries."""

from __future__ import annotations

import time

from chalicelib.runtime import process_groups


def group_gone(pgid: int, timeout: float = 10.0) -> bool:
    """True once no process of the group runs; a bounded wait (SIGKILL is not instant)."""
    deadline = time.monotonic() + timeout
    while process_groups.alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
