"""Counting the AWS calls a piece of work makes, for the cost a run used.

Every boto3 and pynamodb call goes through botocore's
``BaseClient._make_api_call``; ``install`` wraps it once per process to count
each call into the meter active on the calling thread (a worker's try and its
heartbeat thread share one). Retries botocore makes inside one call count as
that one call. A thread with no active meter is not counted, so the wrap
costs a thread-local read and nothing else.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

USAGE_EVENT = "aws_usage"
"""The ``event`` of the line that closes a try's log: the AWS calls its worker
made from the claim to the end of the hand-off (read by the API's usage route)."""
USAGE_LOGGER = "slipstream.usage"

_local = threading.local()
_installed = False
_install_lock = threading.Lock()


class CallMeter:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, service: str, operation: str, times: int = 1) -> None:
        with self._lock:
            self._counts[(service, operation)] += times

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Calls so far, by service and operation."""
        with self._lock:
            found: dict[str, dict[str, int]] = {}
            for (service, operation), count in sorted(self._counts.items()):
                found.setdefault(service, {})[operation] = count
            return found

    @contextlib.contextmanager
    def active(self) -> Iterator[CallMeter]:
        """Count this thread's AWS calls into this meter for the block."""
        install()
        previous = getattr(_local, "meter", None)
        _local.meter = self
        try:
            yield self
        finally:
            _local.meter = previous


def install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        from botocore.client import BaseClient  # type: ignore[import-untyped]

        original = BaseClient._make_api_call

        def _metered(self: Any, operation_name: str, api_params: Any) -> Any:
            meter = getattr(_local, "meter", None)
            if meter is not None:
                meter.record(self.meta.service_model.service_name, operation_name)
            return original(self, operation_name, api_params)

        BaseClient._make_api_call = _metered
        _installed = True
