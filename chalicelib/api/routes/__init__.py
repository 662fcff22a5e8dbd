"""One blueprint per resource; ``ALL_BLUEPRINTS`` is what app.py registers."""

from __future__ import annotations

from chalicelib.api.routes import (
    assets,
    backfills,
    connections,
    dag_runs,
    dags,
    deploys,
    event_log,
    grid,
    interventions,
    keys,
    monitor,
    openapi,
    pools,
    sessions,
    slipstream,
    task_instances,
    task_logs,
    tries,
    variables,
    xcom,
)

ALL_BLUEPRINTS = [
    monitor.bp,
    openapi.bp,
    dags.bp,
    dag_runs.bp,
    backfills.bp,
    task_instances.bp,
    task_logs.bp,
    tries.bp,
    interventions.bp,
    pools.bp,
    connections.bp,
    variables.bp,
    event_log.bp,
    keys.bp,
    sessions.bp,
    slipstream.bp,
    grid.bp,
    xcom.bp,
    deploys.bp,
    assets.bp,
]
