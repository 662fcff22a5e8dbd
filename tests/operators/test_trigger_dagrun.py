"""TriggerDagRunOperator: triggers once per try, waits as a reschedule, and
handles an existing run as Airflow does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.runtime.dag_triggers import DagTriggerUnavailable, triggering_dags
from chalicelib.sdk import DAG
from chalicelib.sdk.clock import task_clock
from chalicelib.sdk.exceptions import TaskFailed, TaskRescheduled, TaskSkipped
from operators.trigger_dagrun import DagRunAlreadyExists, TriggerDagRunOperator

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class FakeTrigger:
    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.resets: list[str] = []

    def trigger(self, dag_id: str, *, run_id: str, logical_date: Any, conf: Any) -> bool:
        if (dag_id, run_id) in self.runs:
            return False
        self.runs[(dag_id, run_id)] = {"state": "queued", "conf": conf, "logical": logical_date}
        return True

    def reset(self, dag_id: str, run_id: str) -> None:
        self.resets.append(run_id)
        self.runs[(dag_id, run_id)]["state"] = "queued"

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        run = self.runs.get((dag_id, run_id))
        return None if run is None else run["state"]


class Ti:
    def __init__(self, first: dt.datetime | None = None) -> None:
        self.first = first
        self.start_date = T0
        self.pushed: dict[str, Any] = {}

    def get_first_reschedule_date(self, context: Any = None) -> dt.datetime | None:
        return self.first

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _op(**kwargs: Any) -> TriggerDagRunOperator:
    with DAG("parent", start_date=T0, schedule=None):
        return TriggerDagRunOperator(task_id="go", trigger_dag_id="child", **kwargs)


def _execute(op: TriggerDagRunOperator, trigger: FakeTrigger, ti: Ti) -> Any:
    with triggering_dags(trigger), task_clock(lambda: T0):
        return op.execute({"ti": ti})


def test_triggers_with_conf_and_pushes_the_run_id() -> None:
    trigger, ti = FakeTrigger(), Ti()
    _execute(_op(conf={"n": 1}), trigger, ti)
    run_id = "manual__2024-01-01T00:00:00+00:00"
    assert trigger.runs[("child", run_id)]["conf"] == {"n": 1}
    assert ti.pushed == {"trigger_run_id": run_id, "trigger_logical_date": T0.isoformat()}


def test_an_existing_run_fails_skips_or_is_reset() -> None:
    trigger = FakeTrigger()
    _execute(_op(trigger_run_id="r1"), trigger, Ti())
    with pytest.raises(DagRunAlreadyExists):
        _execute(_op(trigger_run_id="r1"), trigger, Ti())
    with pytest.raises(TaskSkipped):
        _execute(_op(trigger_run_id="r1", skip_when_already_exists=True), trigger, Ti())
    _execute(_op(trigger_run_id="r1", reset_dag_run=True), trigger, Ti())
    assert trigger.resets == ["r1"]


def test_wait_for_completion_reschedules_without_triggering_again() -> None:
    trigger = FakeTrigger()
    op = _op(trigger_run_id="r1", wait_for_completion=True, poke_interval=30)
    with pytest.raises(TaskRescheduled) as info:
        _execute(op, trigger, Ti())
    assert info.value.reschedule_date == T0 + dt.timedelta(seconds=30)
    trigger.runs[("child", "r1")]["state"] = "running"
    with pytest.raises(TaskRescheduled):
        _execute(op, trigger, Ti(first=T0))  # a recheck: no DagRunAlreadyExists
    trigger.runs[("child", "r1")]["state"] = "success"
    assert _execute(op, trigger, Ti(first=T0)) is None
    trigger.runs[("child", "r1")]["state"] = "failed"
    with pytest.raises(TaskFailed, match="failed with failed state failed"):
        _execute(op, trigger, Ti(first=T0))


def test_bad_states_and_no_deployment() -> None:
    with pytest.raises(ValueError, match="not DAG run states"):
        _op(allowed_states=["upstream_failed"])
    with pytest.raises(DagTriggerUnavailable, match="needs a deployment"):
        _op().execute({"ti": Ti()})


def test_in_a_test_run_the_task_fails_with_the_reason() -> None:
    with DAG("lonely", start_date=T0, schedule=None) as dag:
        TriggerDagRunOperator(task_id="go", trigger_dag_id="elsewhere")
    result = dag.test(logical_date=T0)
    assert result.task_states == {"go": "failed"}
    assert "needs a deployment" in result.errors["go"]
