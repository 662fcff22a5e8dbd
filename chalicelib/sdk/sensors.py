"""BaseSensorOperator: a task that waits for a condition by poking it.

``mode="reschedule"`` (Slipstream's default, see docs/architecture.md) makes
every poke a short try invocation: an unsatisfied poke raises
``TaskRescheduled`` and the try waits ``up_for_reschedule`` on a timer (an SQS
delay message or the tick), holding no Lambda or container, then pokes again
as the same try. ``mode="poke"`` loops inside one invocation, as Airflow's
poke mode does, bounded by the try's ``execution_timeout``.

Time comes from ``chalicelib.sdk.clock`` so ``dags test`` skips the waits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.sdk import clock
from chalicelib.sdk.baseoperator import BaseOperator
from chalicelib.sdk.exceptions import (
    SensorTimeout,
    TaskFailed,
    TaskRescheduled,
    TaskSkipped,
    TaskTimeout,
)

MODES = ("poke", "reschedule")
log = logging.getLogger("slipstream.task")

DEFAULT_MODE = "reschedule"
DEFAULT_POKE_INTERVAL = 60.0
DEFAULT_TIMEOUT = 7 * 24 * 60 * 60.0  # Airflow's [sensors] default_timeout: a week
_LARGEST_INTERVAL = dt.timedelta.max.total_seconds() - 1


@dataclass(frozen=True)
class PokeReturnValue:
    """What a poke may return instead of a bool: done or not, and the value to
    push as the sensor's result (its XCom) once done (Airflow's PokeReturnValue)."""

    is_done: bool
    xcom_value: Any = None

    def __bool__(self) -> bool:
        return self.is_done


def _seconds(value: Any, name: str, task_id: str) -> float:
    """Seconds from a number or a timedelta; anything else is the author's mistake."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"sensor {task_id!r}: {name} must be seconds or a timedelta, got {value!r}")
    if seconds < 0:
        raise ValueError(f"sensor {task_id!r}: {name} must not be negative, got {value!r}")
    return seconds


def _jittered(dag_id: str, task_id: str, started_at: Any, poke_count: int, base: float) -> float:
    """Airflow's backoff step for poke ``poke_count``: a floor doubling from the poke
    interval, plus a deterministic jitter below that floor (sha1 of the sensor and
    its start), so sensors that started together spread out."""
    floor = max(int(base * 2 ** (poke_count - 2)), 1)
    seed = f"{dag_id}#{task_id}#{started_at}#{poke_count}".encode()
    jitter = int(hashlib.sha1(seed, usedforsecurity=False).hexdigest(), 16) % floor
    return float(min(floor + jitter, _LARGEST_INTERVAL))


class BaseSensorOperator(BaseOperator):
    """Subclasses implement ``poke(context) -> bool | PokeReturnValue``."""

    def __init__(
        self,
        *,
        poke_interval: float | dt.timedelta = DEFAULT_POKE_INTERVAL,
        timeout: float | dt.timedelta = DEFAULT_TIMEOUT,
        soft_fail: bool = False,
        mode: str = DEFAULT_MODE,
        exponential_backoff: bool = False,
        max_wait: float | dt.timedelta | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        task_id = self.task_id
        self.poke_interval = _seconds(poke_interval, "poke_interval", task_id)
        self.timeout = _seconds(timeout, "timeout", task_id)
        self.max_wait = None if max_wait is None else _seconds(max_wait, "max_wait", task_id)
        if mode not in MODES:
            raise ValueError(
                f"sensor {task_id!r}: mode must be one of {', '.join(MODES)}, got {mode!r}"
            )
        if soft_fail and never_fail:
            raise ValueError(f"sensor {task_id!r}: soft_fail and never_fail cannot both be set")
        self.mode = mode
        self.soft_fail = bool(soft_fail)
        self.exponential_backoff = bool(exponential_backoff)
        self.silent_fail = bool(silent_fail)
        self.never_fail = bool(never_fail)

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"

    def poke(self, context: Mapping[str, Any]) -> bool | PokeReturnValue:
        raise NotImplementedError(f"{type(self).__name__} must implement poke(context)")

    # ---------------------------------------------------------------- running

    def execute(self, context: Mapping[str, Any]) -> Any:
        started_at = self._started_at(context)
        poke_count = 1
        while True:
            done = self._poke_once(context)
            if done:
                return done.xcom_value if isinstance(done, PokeReturnValue) else None
            elapsed = (clock.now() - started_at).total_seconds()
            if elapsed > self.timeout:
                message = (
                    f"Sensor has timed out; run duration of {elapsed:g} seconds exceeds "
                    f"the specified timeout of {self.timeout:g}."
                )
                if self.soft_fail:
                    raise TaskSkipped(message)
                raise SensorTimeout(message)
            interval = self.next_poke_interval(started_at, elapsed, poke_count)
            if self.reschedule:
                raise TaskRescheduled(clock.now() + dt.timedelta(seconds=interval))
            clock.sleep(interval)
            poke_count += 1

    def _started_at(self, context: Mapping[str, Any]) -> dt.datetime:
        """Reschedule mode counts the timeout from the try's first poke, kept across
        reschedules on the task instance (Airflow's first reschedule date)."""
        if self.reschedule:
            ti = context.get("ti")
            first = getattr(ti, "get_first_reschedule_date", None)
            recorded = first(context) if callable(first) else None
            if recorded is not None:
                return recorded
        return clock.now()

    def _poke_once(self, context: Mapping[str, Any]) -> bool | PokeReturnValue:
        """One poke, with Airflow's soft_fail / never_fail / silent_fail handling."""
        try:
            return self.poke(context)
        except (SensorTimeout, TaskTimeout, TaskFailed) as exc:
            if self.soft_fail:
                raise TaskSkipped(f"Skipping due to soft_fail: {exc}") from exc
            raise
        except (TaskSkipped, TaskRescheduled):
            raise
        except Exception as exc:
            if self.never_fail:
                raise TaskSkipped(f"Skipping due to never_fail: {exc}") from exc
            if self.silent_fail:
                self.log_poke_error(exc)
                return False
            raise

    def log_poke_error(self, exc: Exception) -> None:
        log.warning("Sensor %s poke failed, trying again (silent_fail): %s", self.task_id, exc)

    def next_poke_interval(self, started_at: Any, elapsed: float, poke_count: int) -> float:
        """Seconds until the next poke: ``poke_interval``, or with
        ``exponential_backoff`` Airflow's jittered doubling, capped by what is left
        of ``timeout`` and by ``max_wait``. A rescheduled try does not remember its
        poke count, so (as Airflow) it is estimated from the time elapsed."""
        if not self.exponential_backoff:
            return self.poke_interval
        dag = self.get_dag()
        dag_id = dag.dag_id if dag is not None else ""
        if self.reschedule:
            poke_count = 0
            waited = 0.0
            while waited <= elapsed:
                poke_count += 1
                waited += _jittered(
                    dag_id, self.task_id, started_at, poke_count, self.poke_interval
                )
        interval = _jittered(dag_id, self.task_id, started_at, poke_count, self.poke_interval)
        interval = min(self.timeout - int(elapsed), interval)
        if self.max_wait is not None:
            interval = min(self.max_wait, interval)
        return max(interval, 0.0)
