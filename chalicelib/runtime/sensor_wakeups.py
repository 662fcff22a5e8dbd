"""How a rescheduled sensor asks to be woken early by an event instead of
waiting out its ``poke_interval``.

An S3KeySensor that finds nothing registers the keys it waits for; when an S3
"Object Created" event for one of them reaches the scheduler
(``scheduler.sensor_wakeups``), the sensor pokes again at once. The timer set
by the reschedule stays as the fallback: an event that is lost, or a bucket
without EventBridge notifications, costs only the wait until the next poke.

The worker sets a registry for the try; outside a worker (``dags test``)
registering is a no-op and the sensor pokes on its interval.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.s3_keys import KeyPattern

__all__ = ["KeyPattern", "SensorWakeRegistry", "TryWakeups", "wake_on_s3", "waking_sensors"]

log = logging.getLogger("slipstream.worker")


class SensorWakeRegistry(Protocol):
    def wake_on_s3(self, patterns: Sequence[KeyPattern]) -> None:
        """Wake this try's sensor when an object matching any pattern is created."""
        ...


_REGISTRY: contextvars.ContextVar[SensorWakeRegistry | None] = contextvars.ContextVar(
    "slipstream_sensor_wake_registry", default=None
)


def wake_on_s3(patterns: Sequence[KeyPattern]) -> bool:
    """Register ``patterns`` for the running try; False when nothing can wake it
    (no registry: ``dags test``), so the caller relies on its interval."""
    registry = _REGISTRY.get()
    if registry is None or not patterns:
        return False
    registry.wake_on_s3(patterns)
    return True


@contextlib.contextmanager
def waking_sensors(registry: SensorWakeRegistry) -> Iterator[None]:
    token = _REGISTRY.set(registry)
    try:
        yield
    finally:
        _REGISTRY.reset(token)


class TryWakeups:
    """The worker's registry for one try: records its waits in ``watches``
    (store.s3_watches.S3WatchStore). A failed write is logged and dropped: the
    wake-up only saves time, and the reschedule's timer still pokes."""

    def __init__(self, watches: Any, message: WorkerMessage):
        self.watches = watches
        self.message = message

    def wake_on_s3(self, patterns: Sequence[KeyPattern]) -> None:
        m = self.message
        try:
            self.watches.watch(m.dag_id, m.run_id, m.task_id, m.map_index, patterns)
        except Exception as exc:  # never the task's failure
            log.warning("%s: uploads will not wake this sensor early: %s", m.label, exc)
