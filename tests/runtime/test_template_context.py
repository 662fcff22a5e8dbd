"""Every context value, rendered exactly as Airflow 2 renders it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
import pytest

from chalicelib.core.runs import DagRun, RunType
from chalicelib.runtime import macros
from chalicelib.runtime.context import build_context, resolve_params
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.templating import render_value, template_env
from chalicelib.runtime.xcom import InMemoryXComStore
from chalicelib.sdk.params import Param
from tests.runtime.runtime_doubles import FakeDag, FakeOperator, scheduled_run

UTC = dt.timezone.utc


def context_for(run: DagRun, dag: FakeDag | None = None, params: Any = None) -> dict[str, Any]:
    dag = dag or FakeDag(run.dag_id)
    task = FakeOperator("t", dag)
    ti = RuntimeTaskInstance(
        dag_id=dag.dag_id,
        task_id="t",
        run_id=run.run_id,
        map_index=-1,
        try_number=1,
        max_tries=0,
        task=task,
        xcoms=InMemoryXComStore(),
        is_mapped=lambda _: False,
    )
    return build_context(dag, task, run, ti, params or {})


def render(context: dict[str, Any], source: str) -> Any:
    return render_value(source, context, template_env(context["dag"]))


def test_scheduled_daily_run() -> None:
    run = scheduled_run("etl", dt.datetime(2024, 1, 1, tzinfo=UTC), conf={"x": 1})
    ctx = context_for(run)
    assert ctx["ds"] == "2024-01-01"
    assert ctx["ds_nodash"] == "20240101"
    assert ctx["ts"] == "2024-01-01T00:00:00+00:00"
    assert ctx["ts_nodash"] == "20240101T000000"
    assert ctx["ts_nodash_with_tz"] == "20240101T000000+0000"
    assert ctx["run_id"] == "scheduled__2024-01-01T00:00:00+00:00"
    assert ctx["task_instance_key_str"] == "etl__t__20240101"
    for key in ("logical_date", "data_interval_start", "data_interval_end"):
        assert isinstance(ctx[key], pendulum.DateTime)
        assert ctx[key].tzinfo is not None and ctx[key].utcoffset() == dt.timedelta(0)
    assert ctx["logical_date"] == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert ctx["data_interval_start"] == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert ctx["data_interval_end"] == dt.datetime(2024, 1, 2, tzinfo=UTC)
    assert ctx["ti"] is ctx["task_instance"]
    assert ctx["task"].task_id == "t"
    assert ctx["macros"] is macros
    assert ctx["prev_data_interval_start_success"] is None
    dag_run = ctx["dag_run"]
    assert (dag_run.dag_id, dag_run.run_id, dag_run.run_type) == ("etl", run.run_id, "scheduled")
    assert dag_run.conf == {"x": 1}
    assert dag_run.logical_date == ctx["logical_date"] == dag_run.execution_date
    assert dag_run.data_interval_end == ctx["data_interval_end"]
    assert dag_run.external_trigger is False


def test_rendered_values_match_airflow_text() -> None:
    run = scheduled_run("etl", dt.datetime(2024, 1, 1, 6, 30, tzinfo=UTC), conf={"k": "v"})
    ctx = context_for(run)
    assert render(ctx, "{{ logical_date }}") == "2024-01-01 06:30:00+00:00"
    assert render(ctx, "{{ data_interval_end }}") == "2024-01-02 06:30:00+00:00"
    assert render(ctx, "{{ ds }} {{ ts }}") == "2024-01-01 2024-01-01T06:30:00+00:00"
    assert render(ctx, "{{ dag_run.conf }}") == "{'k': 'v'}"
    assert render(ctx, "{{ dag_run.conf['k'] }}") == "v"
    assert render(ctx, "{{ ti.try_number }} {{ task.task_id }} {{ dag.dag_id }}") == "1 t etl"
    assert render(ctx, "{{ data_interval_start | ds }}") == "2024-01-01"


def test_manual_run_without_logical_date_uses_its_run_time() -> None:
    when = dt.datetime(2024, 3, 5, 14, 15, 16, 123456, tzinfo=UTC)
    run = DagRun(
        dag_id="d",
        run_id="manual__x",
        run_type=RunType.MANUAL,
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=when,
        conf={"limit": 3},
    )
    ctx = context_for(run)
    assert ctx["logical_date"] == when
    assert ctx["data_interval_start"] == when == ctx["data_interval_end"]
    assert ctx["ds"] == "2024-03-05"
    assert ctx["ts"] == "2024-03-05T14:15:16.123456+00:00"
    assert ctx["ts_nodash"] == "20240305T141516"
    assert ctx["ts_nodash_with_tz"] == "20240305T141516.123456+0000"
    assert ctx["dag_run"].run_type == "manual"
    assert ctx["dag_run"].external_trigger is True


def test_non_utc_dag_keeps_context_dates_in_utc_like_airflow() -> None:
    # Midnight in New York on 2024-01-01 is 05:00 UTC; 22:00 on Jan 1 is Jan 2 in UTC.
    ny = pendulum.timezone("America/New_York")
    dag = FakeDag("ny", timezone="America/New_York")
    start = dt.datetime(2024, 1, 1, 22, 0, tzinfo=ny)
    ctx = context_for(scheduled_run("ny", start), dag)
    assert ctx["logical_date"].utcoffset() == dt.timedelta(0)
    assert ctx["logical_date"] == dt.datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
    assert ctx["ds"] == "2024-01-02"
    assert ctx["ts"] == "2024-01-02T03:00:00+00:00"
    assert render(ctx, "{{ logical_date.in_timezone(dag.timezone) | ds }}") == "2024-01-01"


def test_naive_datetimes_are_taken_as_utc() -> None:
    ctx = context_for(scheduled_run("d", dt.datetime(2024, 2, 29)))
    assert ctx["ts"] == "2024-02-29T00:00:00+00:00"


class TestParams:
    def test_task_params_override_dag_params_and_conf_overrides_both(self) -> None:
        dag = FakeDag(params={"a": Param(1, type="integer"), "b": 2, "c": Param("dag")})
        task = FakeOperator("t", dag, params={"b": Param(20), "d": 4})
        params = resolve_params(dag, task, {"c": "conf", "e": 5, "d": 40})
        assert params == {"a": 1, "b": 20, "c": "conf", "d": 40, "e": 5}

    def test_conf_is_ignored_when_the_dag_forbids_overrides(self) -> None:
        dag = FakeDag(params={"a": 1}, dag_run_conf_overrides_params=False)
        task = FakeOperator("t", dag)
        assert resolve_params(dag, task, {"a": 2}) == {"a": 1}

    def test_a_dag_that_resolves_its_own_params_is_asked(self) -> None:
        seen: list[dict[str, Any]] = []

        def resolver(conf: dict[str, Any]) -> dict[str, Any]:
            seen.append(conf)
            return {"a": conf.get("a", 1), "validated": True}

        dag = FakeDag(params={"a": Param(1)}, resolve_params=resolver)
        task = FakeOperator("t", dag, params={"t": "task"})
        assert resolve_params(dag, task, {"a": 9}) == {"a": 9, "validated": True, "t": "task"}
        assert seen == [{"a": 9}]

    def test_params_render_with_attribute_and_item_syntax(self) -> None:
        ctx = context_for(scheduled_run(), params={"x": "ex", "n": 3})
        assert render(ctx, "{{ params.x }}-{{ params['n'] + 1 }}") == "ex-4"


@pytest.mark.parametrize("key", ["execution_date", "next_ds"])
def test_keys_not_provided_yet(key: str) -> None:
    assert key not in context_for(scheduled_run())


def test_asset_keys_are_there_and_empty_outside_asset_runs() -> None:
    ctx = context_for(scheduled_run())
    assert ctx["inlets"] == [] and ctx["outlets"] == []
    assert dict(ctx["triggering_asset_events"]) == {}
    assert len(ctx["outlet_events"]) == 0


@pytest.mark.parametrize("key", ["var", "conn"])
def test_var_and_conn_are_lazy_accessors(key: str) -> None:
    # Building the context reads nothing: tests/runtime/test_secrets_templates.py renders them.
    assert "dynamic access" in repr(context_for(scheduled_run())[key])
