"""``/version`` and ``/monitor/health``: answer without credentials, as Airflow's do."""

from __future__ import annotations

import datetime as dt

from chalice import Blueprint

import chalicelib
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.admin import (
    HealthInfo,
    SchedulerInfo,
    StatusInfo,
    TriggererInfo,
    VersionInfo,
)
from chalicelib.api.routing import Call, route

bp = Blueprint(__name__)


@route(bp, "/version", "GET", role=None, response=VersionInfo, tag="Version")
def get_version(call: Call) -> VersionInfo:
    """Slipstream's version (the Airflow API version it speaks is v2)."""
    return VersionInfo(version=chalicelib.__version__, git_version=None)


@route(bp, "/monitor/health", "GET", role=None, response=HealthInfo, tag="Monitor")
def get_health(call: Call) -> HealthInfo:
    """Whether the state store answers; the scheduler has no process to be unhealthy.

    There is no scheduler heartbeat to report: the scheduler runs when events
    arrive. ``metadatabase`` is healthy when one read of the DAG table works.
    """
    try:
        deps.catalog().store.get_dag("__health_check__")
        database = "healthy"
    except Exception:
        database = "unhealthy"
    now = dt.datetime.now(dt.UTC).isoformat()
    return HealthInfo(
        metadatabase=StatusInfo(status=database),
        scheduler=SchedulerInfo(status="healthy", latest_scheduler_heartbeat=now),
        triggerer=TriggererInfo(status=None, latest_triggerer_heartbeat=None),
    )


_ = Role  # routes here need no role
