"""The Airflow context a task's code and templates see.

Values are Airflow 2's, rendered the same way: dates are pendulum DateTimes in
UTC (Airflow keeps them in UTC whatever the DAG's timezone, so ``ds`` is the
UTC date of the logical date), ``ts`` is ISO 8601 with offset, and a manual run
without a logical date takes its run time as logical date, with a zero-length
data interval at that instant when none was inferred.

``conn`` and ``var`` are Airflow's lazy accessors
(``chalicelib/runtime/secrets_context.py``): nothing is read from the
environment or the store until a template or task code asks for a connection
or variable, and what is read is registered with the secret masker.

Not provided (no store behind them yet): ``prev_data_interval_*_success``,
``prev_start_date_success`` and ``prev_end_date_success`` are None;
the deprecated ``triggering_dataset_events`` and ``execution_date`` /
``next_ds`` / ``prev_ds`` family are absent. ``triggering_asset_events`` is
empty except in asset-triggered runs (runtime/outlets.py).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

import pendulum

from chalicelib.core.runs import DagRun, RunType
from chalicelib.runtime import macros
from chalicelib.runtime.outlets import OutletEventAccessors, TriggeringAssetEvents
from chalicelib.runtime.secrets_context import ConnectionAccessor, VariableAccessor


class DagRunContext:
    """``dag_run`` in the context: the run's facts under Airflow's attribute names."""

    __slots__ = (
        "_run",
        "conf",
        "dag_id",
        "data_interval_end",
        "data_interval_start",
        "logical_date",
        "run_id",
        "run_type",
        "state",
    )

    def __init__(self, run: DagRun, dates: _RunDates):
        self._run = run
        self.dag_id = run.dag_id
        self.run_id = run.run_id
        self.run_type = run.run_type.value
        self.conf = run.conf
        self.state = run.state.value
        self.logical_date = dates.logical_date
        self.data_interval_start = dates.data_interval_start
        self.data_interval_end = dates.data_interval_end

    # Rarely read, so converted only when asked for: every try builds one of these.
    @property
    def run_after(self) -> pendulum.DateTime:
        return _utc(self._run.run_after)

    @property
    def start_date(self) -> pendulum.DateTime | None:
        return None if self._run.start_date is None else _utc(self._run.start_date)

    @property
    def end_date(self) -> pendulum.DateTime | None:
        return None if self._run.end_date is None else _utc(self._run.end_date)

    @property
    def execution_date(self) -> pendulum.DateTime:
        return self.logical_date

    @property
    def external_trigger(self) -> bool:
        return self.run_type in (RunType.MANUAL.value, RunType.EVENT.value)

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}, state:{self.state}>"


class _RunDates:
    """Every date-derived context value of one run, computed once per run."""

    __slots__ = (
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "logical_date",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
    )

    def __init__(
        self,
        logical_date: dt.datetime,
        interval_start: dt.datetime | None,
        interval_end: dt.datetime | None,
    ):
        self.logical_date = _utc(logical_date)
        self.data_interval_start = (
            self.logical_date if interval_start is None else _utc(interval_start)
        )
        self.data_interval_end = self.logical_date if interval_end is None else _utc(interval_end)
        self.ds = self.logical_date.strftime("%Y-%m-%d")
        self.ds_nodash = self.ds.replace("-", "")
        self.ts = self.logical_date.isoformat()
        self.ts_nodash = self.logical_date.strftime("%Y%m%dT%H%M%S")
        self.ts_nodash_with_tz = self.ts.replace("-", "").replace(":", "")


def _utc(value: dt.datetime) -> pendulum.DateTime:
    """A pendulum DateTime in UTC; a naive datetime is taken to be UTC already."""
    return pendulum.instance(value, tz="UTC").in_timezone("UTC")


@functools.lru_cache(maxsize=1024)
def run_dates(
    logical_date: dt.datetime,
    interval_start: dt.datetime | None,
    interval_end: dt.datetime | None,
) -> _RunDates:
    return _RunDates(logical_date, interval_start, interval_end)


def effective_logical_date(run: DagRun) -> dt.datetime:
    """Airflow 2 gives a manual run without a logical date its trigger time."""
    return run.logical_date if run.logical_date is not None else run.run_after


def param_value(param: Any) -> Any:
    """The value of a Param-like object (``.value`` or ``.resolve()``), else the object."""
    resolve = getattr(param, "resolve", None)
    if callable(resolve) and not isinstance(param, type):
        return resolve()
    if hasattr(param, "value") and hasattr(param, "schema"):
        return param.value
    return param


def resolve_params(dag: Any, task: Any, conf: Mapping[str, Any] | None) -> dict[str, Any]:
    """DAG params, overridden by the task's, overridden by the run's conf (Airflow's order).

    When the DAG can resolve params itself (``dag.resolve_params(conf)``, which
    validates against the params' schemas), its answer is used for the DAG's
    params; task params still take precedence over DAG defaults unless the conf
    names them.
    """
    conf = dict(conf or {})
    overrides_allowed = bool(getattr(dag, "dag_run_conf_overrides_params", True))
    effective_conf = conf if overrides_allowed else {}
    values: dict[str, Any] = {}
    resolver = getattr(dag, "resolve_params", None)
    if callable(resolver):
        values.update(resolver(effective_conf))
    else:
        for name, param in _items(getattr(dag, "params", None)):
            values[name] = param_value(param)
    dag_params = getattr(dag, "params", None)
    for name, param in _items(getattr(task, "params", None)):
        inherited = dag_params is not None and name in dag_params and param is dag_params[name]
        if name not in effective_conf and not inherited:
            values[name] = param_value(param)
    if not callable(resolver):
        values.update(effective_conf)
    return values


def _items(params: Any) -> list[tuple[str, Any]]:
    if not params:
        return []
    getter = getattr(params, "get_param", None)
    if callable(getter):  # Airflow-style ParamsDict: values through get_param()
        return [(name, getter(name)) for name in params]
    return list(params.items())


def build_context(
    dag: Any,
    task: Any,
    run: DagRun,
    ti: Any,
    params: Mapping[str, Any],
    *,
    expanded_ti_count: int | None = None,
    triggering_asset_events: Mapping[Any, list[Any]] | None = None,
) -> dict[str, Any]:
    """The context dict passed to ``execute``, templates and callbacks."""
    dates = run_dates(effective_logical_date(run), run.data_interval_start, run.data_interval_end)
    dag_id = getattr(dag, "dag_id", run.dag_id)
    return {
        "conn": ConnectionAccessor(),
        "dag": dag,
        "dag_run": DagRunContext(run, dates),
        "data_interval_start": dates.data_interval_start,
        "data_interval_end": dates.data_interval_end,
        "ds": dates.ds,
        "ds_nodash": dates.ds_nodash,
        "expanded_ti_count": expanded_ti_count,
        "inlets": list(getattr(task, "inlets", []) or []),
        "outlets": list(getattr(task, "outlets", []) or []),
        "outlet_events": OutletEventAccessors(),
        "logical_date": dates.logical_date,
        "macros": macros,
        # Airflow 3: the task's template, which the task may replace in its context
        # before it is rendered at the end of the try (runtime/executing.py).
        "map_index_template": getattr(task, "map_index_template", None),
        "params": params,
        "prev_data_interval_start_success": None,
        "prev_data_interval_end_success": None,
        "prev_start_date_success": None,
        "prev_end_date_success": None,
        "run_id": run.run_id,
        "task": task,
        "task_instance": ti,
        "task_instance_key_str": f"{dag_id}__{task.task_id}__{dates.ds_nodash}",
        "templates_dict": None,
        "test_mode": False,
        "ti": ti,
        "ts": dates.ts,
        "ts_nodash": dates.ts_nodash,
        "ts_nodash_with_tz": dates.ts_nodash_with_tz,
        "triggering_asset_events": triggering_asset_events or TriggeringAssetEvents(),
        "var": VariableAccessor(),
    }
