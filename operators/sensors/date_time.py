"""Sensors that wait for a moment: DateTimeSensor and TimeDeltaSensor.

"Now" is the try's clock (chalicelib.sdk.clock), so under ``dags test`` the
wait is skipped like a retry delay, and deployed it costs no worker: each
unsatisfied poke reschedules the try on a timer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pendulum

from chalicelib.sdk import clock
from chalicelib.sdk.sensors import BaseSensorOperator


def _aware(value: dt.datetime) -> dt.datetime:
    """Naive times are UTC, as Airflow's default timezone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class DateTimeSensor(BaseSensorOperator):
    """Waits until ``target_time`` (a datetime or a templated string) has passed."""

    template_fields = ("target_time",)

    def __init__(self, *, target_time: str | dt.datetime, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(target_time, dt.datetime):
            self.target_time = _aware(target_time).isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise TypeError(
                f"DateTimeSensor (task_id: {self.task_id!r}): target_time must be a datetime "
                f"or a string, got {type(target_time).__name__}"
            )

    def target(self) -> dt.datetime:
        try:
            parsed = pendulum.parse(str(self.target_time), tz="UTC")
        except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
            raise ValueError(
                f"DateTimeSensor (task_id: {self.task_id!r}): target_time "
                f"{self.target_time!r} is not a date and time: {exc}"
            ) from None
        if not isinstance(parsed, dt.datetime):
            raise ValueError(
                f"DateTimeSensor (task_id: {self.task_id!r}): target_time "
                f"{self.target_time!r} is not a date and time"
            )
        return _aware(parsed)

    def poke(self, context: Mapping[str, Any]) -> bool:
        return clock.now() > self.target()


class TimeDeltaSensor(BaseSensorOperator):
    """Waits until ``delta`` after the run's data interval end (Airflow's rule;
    a run without an interval counts from its logical date, then its run_after)."""

    def __init__(self, *, delta: dt.timedelta, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(delta, dt.timedelta):
            raise TypeError(
                f"TimeDeltaSensor (task_id: {self.task_id!r}): delta must be a timedelta, "
                f"got {type(delta).__name__}"
            )
        self.delta = delta

    def target(self, context: Mapping[str, Any]) -> dt.datetime:
        base = context.get("data_interval_end") or context.get("logical_date")
        if base is None:
            base = getattr(context.get("dag_run"), "run_after", None)
        if base is None:
            raise ValueError(
                f"TimeDeltaSensor (task_id: {self.task_id!r}): the run has no data interval "
                "end, logical date or run_after to count from"
            )
        return _aware(base) + self.delta

    def poke(self, context: Mapping[str, Any]) -> bool:
        return clock.now() > self.target(context)
