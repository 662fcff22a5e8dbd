"""Worker messages for executor tests."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.core.messages import RunSnapshot, WorkerMessage
from chalicelib.core.runs import DagRun
from tests.core.simulation import make_spec, manual_run

DAG_ID = "etl"
RUN_ID = "scheduled__2024-01-01T00:00:00+00:00"


def a_run(tenant: str | None = None, conf: dict[str, object] | None = None) -> DagRun:
    """The run message() names, of ``tenant``."""
    run = manual_run(make_spec({"extract": []}), RUN_ID)
    return replace(run, dag_id=DAG_ID, tenant=tenant, conf=dict(conf or {}))


def message(
    task_id: str = "extract",
    *,
    map_index: int = -1,
    try_number: int = 1,
    run: DagRun | None = None,
) -> WorkerMessage:
    """A try of a_run(); with ``run``, its snapshot as the scheduler makes it
    (None for a conf over SNAPSHOT_CONF_BYTES)."""
    return WorkerMessage(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        version="v" * 64,
        run=None if run is None else RunSnapshot.of(run),
    )
