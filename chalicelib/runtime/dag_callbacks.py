"""DAG-level on_success_callback / on_failure_callback, run after a run ends.

User code, so it runs where user code runs: in ``dag.test()``'s process, or
in a worker invoked by the scheduler when it finishes a run (the control
plane never imports DAG files). Like Airflow's, a callback is best effort:
its errors are logged and never change the run's state.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.core.messages import DAG_CALLBACK_TASK
from chalicelib.core.runs import DagRun
from chalicelib.core.states import DagRunState
from chalicelib.runtime.context import DagRunContext, run_dates

__all__ = ["DAG_CALLBACK_TASK", "run_dag_callbacks"]

log = logging.getLogger("slipstream.dag")


def run_dag_callbacks(dag: Any, run: DagRun) -> int:
    """Call the callbacks for the run's final state; returns how many ran."""
    success = run.state is DagRunState.SUCCESS
    name = "on_success_callback" if success else "on_failure_callback"
    callbacks = getattr(dag, name, None)
    if callbacks is None:
        return 0
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    dates = run_dates(
        run.logical_date or run.run_after, run.data_interval_start, run.data_interval_end
    )
    context = {
        "dag": dag,
        "dag_run": DagRunContext(run, dates),
        "run_id": run.run_id,
        "logical_date": dates.logical_date,
        "ds": dates.ds,
        "ts": dates.ts,
        "data_interval_start": dates.data_interval_start,
        "data_interval_end": dates.data_interval_end,
        "params": dict(getattr(dag, "params", {}) or {}),
        "reason": "success" if success else "task_failure",
    }
    ran = 0
    for callback in callbacks:
        try:
            callback(context)
            ran += 1
        except Exception:
            log.exception("DAG %s %s of run %s failed", run.dag_id, name, run.run_id)
    return ran
