"""One blueprint per resource; ``ALL_BLUEPRINTS`` is what app.py registers."""

from __future__ import annotations

from chalicelib.api.routes import (
    connections,
    dag_runs,
    dags,
    deploys,
    event_log,
    keys,
    monitor,
    pools,
    task_instances,
    task_logs,
    variables,
)

ALL_BLUEPRINTS = [
    monitor.bp,
    dags.bp,
    dag_runs.bp,
    task_instances.bp,
    task_logs.bp,
    pools.bp,
    connections.bp,
    variables.bp,
    event_log.bp,
    keys.bp,
    deploys.bp,
]
