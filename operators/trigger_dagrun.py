"""TriggerDagRunOperator: start a run of another DAG, and optionally wait for
it the way a reschedule sensor waits, holding no worker between checks."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pendulum

from chalicelib.core.runs import RunType, make_run_id
from chalicelib.core.states import DagRunState
from chalicelib.runtime.dag_triggers import dag_trigger
from chalicelib.sdk import clock
from chalicelib.sdk.baseoperator import BaseOperator
from chalicelib.sdk.exceptions import TaskFailed, TaskRescheduled, TaskSkipped

log = logging.getLogger("slipstream.task")

XCOM_RUN_ID = "trigger_run_id"
XCOM_LOGICAL_DATE = "trigger_logical_date"


class DagRunAlreadyExists(TaskFailed):
    """The run to trigger exists and neither reset_dag_run nor
    skip_when_already_exists says what to do (Airflow's DagRunAlreadyExists)."""

    def __init__(self, message: str):
        super().__init__(message, non_retryable=False)


def _run_states(value: Iterable[Any] | None, default: list[str], where: str) -> list[str]:
    states = [str(getattr(s, "value", s)) for s in (default if value is None else value)]
    valid = {s.value for s in DagRunState}
    wrong = sorted(set(states) - valid)
    if wrong:
        raise ValueError(f"{where}: {', '.join(wrong)} are not DAG run states")
    return states


class TriggerDagRunOperator(BaseOperator):
    """Airflow's TriggerDagRunOperator. The run id is ``trigger_run_id`` or the
    manual run id of ``logical_date`` (default: when this try first ran), so a
    repeated invocation finds the run it made instead of making another. With
    ``wait_for_completion`` the try rechecks every ``poke_interval`` seconds as
    a reschedule (``up_for_reschedule`` in between, no worker held) until the
    run reaches ``allowed_states`` (success by default) or ``failed_states``
    (failed by default, which fails this task)."""

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: Mapping[str, Any] | None = None,
        logical_date: str | dt.datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = f"TriggerDagRunOperator (task_id: {self.task_id!r})"
        if conf is not None and not isinstance(conf, Mapping):
            raise TypeError(f"{where}: conf must be a dict, got {type(conf).__name__}")
        if isinstance(poke_interval, bool) or not isinstance(poke_interval, (int, float)):
            raise TypeError(f"{where}: poke_interval must be seconds, got {poke_interval!r}")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = dict(conf or {})
        self.logical_date = (
            logical_date.isoformat() if isinstance(logical_date, dt.datetime) else logical_date
        )
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.poke_interval = float(poke_interval)
        self.allowed_states = _run_states(allowed_states, [DagRunState.SUCCESS.value], where)
        self.failed_states = _run_states(failed_states, [DagRunState.FAILED.value], where)
        self.skip_when_already_exists = skip_when_already_exists
        self.deferrable = deferrable  # waiting never holds a worker here anyway

    def _logical(self, context: Mapping[str, Any]) -> dt.datetime:
        if self.logical_date:
            parsed = pendulum.parse(str(self.logical_date), tz="UTC")
            if not isinstance(parsed, dt.datetime):
                raise ValueError(
                    f"TriggerDagRunOperator (task_id: {self.task_id!r}): logical_date "
                    f"{self.logical_date!r} is not a date and time"
                )
            return parsed.astimezone(dt.UTC)
        ti = context.get("ti")
        first = ti.get_first_reschedule_date(context) if ti is not None else None
        started = first or getattr(ti, "start_date", None) or clock.now()
        return started.astimezone(dt.UTC)

    def execute(self, context: Mapping[str, Any]) -> Any:
        trigger = dag_trigger()
        logical = self._logical(context)
        run_id = self.trigger_run_id or make_run_id(RunType.MANUAL, logical)
        ti = context.get("ti")
        rechecking = ti is not None and ti.get_first_reschedule_date(context) is not None
        if not rechecking:
            self._trigger(trigger, run_id, logical)
        if ti is not None:
            ti.xcom_push(key=XCOM_RUN_ID, value=run_id)
            ti.xcom_push(key=XCOM_LOGICAL_DATE, value=logical.isoformat())
        if not self.wait_for_completion:
            return None
        state = trigger.run_state(self.trigger_dag_id, run_id)
        if state in self.failed_states:
            raise TaskFailed(f"{self.trigger_dag_id} failed with failed state {state}")
        if state in self.allowed_states:
            log.info("%s finished with allowed state %s", self.trigger_dag_id, state)
            return None
        log.info("Waiting for %s run %s (%s)", self.trigger_dag_id, run_id, state)
        raise TaskRescheduled(clock.now() + dt.timedelta(seconds=self.poke_interval))

    def _trigger(self, trigger: Any, run_id: str, logical: dt.datetime) -> None:
        created = trigger.trigger(
            self.trigger_dag_id, run_id=run_id, logical_date=logical, conf=self.conf
        )
        if created:
            log.info("Triggered %s run %s", self.trigger_dag_id, run_id)
            return
        if self.reset_dag_run:
            log.info("Clearing %s run %s (reset_dag_run)", self.trigger_dag_id, run_id)
            trigger.reset(self.trigger_dag_id, run_id)
            return
        if self.skip_when_already_exists:
            raise TaskSkipped(f"{self.trigger_dag_id} run {run_id} exists already")
        raise DagRunAlreadyExists(f"A run of {self.trigger_dag_id} with id {run_id} exists already")
