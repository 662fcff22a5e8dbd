"""Exceptions a task raises on purpose to steer its own outcome."""

from __future__ import annotations

import datetime as dt

from chalicelib.core.errors import SlipstreamError
from chalicelib.secrets.errors import NotFound

# Airflow's name for "the connection (or other object) asked for does not exist".
AirflowNotFoundException = NotFound


class TaskSkipped(SlipstreamError):
    """Skip this task (Airflow's AirflowSkipException); downstream rules then apply."""


class TaskFailed(SlipstreamError):
    """Fail this try on purpose.

    With ``non_retryable=True`` (the default, like Airflow's AirflowFailException)
    the task fails at once whatever its ``retries``; with ``False`` retries apply.
    """

    def __init__(self, message: str = "", *, non_retryable: bool = True):
        super().__init__(message)
        self.non_retryable = non_retryable


class TaskTimeout(SlipstreamError):
    """The try ran past its ``execution_timeout`` (Airflow's AirflowTaskTimeout); retries apply."""


class TaskRescheduled(SlipstreamError):
    """End this poke and run the same try again at ``reschedule_date``
    (Airflow's AirflowRescheduleException); raised by reschedule-mode sensors."""

    def __init__(self, reschedule_date: dt.datetime):
        super().__init__(f"rescheduled to {reschedule_date.isoformat()}")
        self.reschedule_date = reschedule_date


class SensorTimeout(TaskFailed):
    """A sensor waited past its ``timeout`` (Airflow's AirflowSensorTimeout):
    the task fails at once, retries notwithstanding, as in Airflow."""

    def __init__(self, message: str = ""):
        super().__init__(message, non_retryable=True)
