"""Per-item failure isolation for the scheduler's sweeps (the tick).

A tick walks many independent items: due DAGs, stale tries, stalled runs,
slot counters. One throttled call or one broken run must cost that item
alone (the next tick finds it again), not every item after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from chalicelib.aws.errors import describe, is_expected_aws_error


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """An expected AWS error is one line; anything else keeps its traceback (a bug)."""
    if is_expected_aws_error(exc):
        log.warning("%s failed, retried later: %s", what, describe(exc))
    else:
        log.error("%s failed", what, exc_info=exc)


class Failures:
    """Collects what failed; ``item`` runs one item and keeps its error to itself."""

    def __init__(self, log: logging.Logger):
        self._log = log
        self.items: list[str] = []

    @contextmanager
    def item(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.items.append(f"{what}: {describe(exc)}")
            log_failure(self._log, what, exc)


def isolated(failures: Failures | None, what: str) -> AbstractContextManager[None]:
    """``failures.item(what)``, or no isolation at all (errors propagate) without one."""
    return nullcontext() if failures is None else failures.item(what)
