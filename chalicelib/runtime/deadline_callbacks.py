"""A missed deadline's callback, run where user code runs (a worker, or ``dags test``).

Called as Airflow calls it: ``callback(**kwargs, context=context)``, with
``context = {"dag_run": <the run as the REST API shows it>, "deadline": {"id":
..., "deadline_time": ...}}``; an ``async def`` callback is awaited. Best
effort, like DAG callbacks: an error is logged and changes no state.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import logging
from typing import Any

from chalicelib.core.deadlines import DEADLINE_CALLBACK_TASK
from chalicelib.core.messages import WorkerMessage
from chalicelib.core.runs import DagRun

__all__ = ["DEADLINE_CALLBACK_TASK", "call_deadline_callback", "run_deadline_callback"]

log = logging.getLogger("slipstream.dag")


def deadline_id(run: DagRun, index: int) -> str:
    return f"{run.dag_id}/{run.run_id}/{index}"


def dag_run_json(run: DagRun) -> dict[str, Any]:
    """The run under the field names of Airflow's DAGRunResponse (what Airflow passes)."""

    def iso(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "dag_id": run.dag_id,
        "dag_run_id": run.run_id,
        "logical_date": iso(run.logical_date),
        "data_interval_start": iso(run.data_interval_start),
        "data_interval_end": iso(run.data_interval_end),
        "run_after": iso(run.run_after),
        "start_date": iso(run.start_date),
        "end_date": iso(run.end_date),
        "run_type": run.run_type.value,
        "state": run.state.value,
        "conf": dict(run.conf),
        "note": run.note,
        "dag_versions": [run.version] if run.version else [],
    }


def _resolve(alert: Any) -> Any:
    callback = alert.callback
    if callback.callable is not None:
        return callback.callable
    module, _, name = callback.path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def call_deadline_callback(alert: Any, run: DagRun, index: int, deadline_time: dt.datetime) -> bool:
    """Run ``alert``'s callback for ``run``; True when it returned without error."""
    context = {
        "dag_run": dag_run_json(run),
        "deadline": {"id": deadline_id(run, index), "deadline_time": deadline_time},
    }
    try:
        result = _resolve(alert)(**alert.callback.kwargs, context=context)
        if inspect.isawaitable(result):
            import asyncio  # only for an async callback: kept off the worker's cold start

            asyncio.run(_await(result))
    except Exception:
        log.exception("deadline callback %s of run %s failed", alert.callback.path, run.run_id)
        return False
    return True


async def _await(awaitable: Any) -> Any:
    return await awaitable


def run_deadline_callback(deps: Any, message: WorkerMessage, spec: Any, run: DagRun) -> bool:
    """The worker's side: load the DAG from its bundle, claim the callback (once,
    however often it is sent) and call the alert's callback."""
    index = message.map_index
    store = deps.store.deadlines
    if not 0 <= index < len(spec.deadlines):
        log.warning("%s: the DAG version has no deadline %d", message.label, index)
        return False
    found = [d for d in store.for_run(run.dag_id, run.run_id, index + 1) if d.index == index]
    if not found:
        log.warning("%s: no such deadline", message.label)
        return False
    bundle_key = deps.scheduler.specs.bundle_key(message.dag_id, message.version)
    if bundle_key is None or spec.fileloc is None:
        log.warning("%s: no bundle to load the deadline callback from", message.label)
        return False
    if getattr(deps, "task_credentials", None) is not None:  # user code in a child
        from chalicelib.runtime.isolated_tries import run_isolated_deadline

        when = found[0].deadline_time
        return run_isolated_deadline(deps, message, spec, run, bundle_key, index, when)
    # Loaded before the claim: a worker that fails to load the DAG leaves the
    # callback unclaimed, so the tick sends it again (REDISPATCH_AFTER).
    dag = deps.bundles.load_dag(bundle_key, spec.fileloc, spec.dag_id)
    if not store.claim_callback(run.dag_id, run.run_id, index):
        log.info("%s: deadline callback already taken by another worker", message.label)
        return False
    ok = call_deadline_callback(dag.deadline[index], run, index, found[0].deadline_time)
    log.info("%s: deadline callback ran (%s)", message.label, "ok" if ok else "failed")
    return True
