"""One blueprint per resource, one module each.

Importing this package imports none of them: the API Lambda registers every
route from ``lazy_routes``' table at import and imports a module when a request
first reaches it (issue 8, cold start). ``blueprints()`` (or ``ALL_BLUEPRINTS``)
imports them all, which also fills ``routing.OPERATIONS`` for the OpenAPI
document.
"""

from __future__ import annotations

import importlib
from typing import Any

MODULES = (
    "monitor",
    "openapi",
    "dags",
    "dag_runs",
    "backfills",
    "task_instances",
    "task_logs",
    "tries",
    "interventions",
    "pools",
    "connections",
    "variables",
    "event_log",
    "keys",
    "sessions",
    "slipstream",
    "dag_overview",
    "grid",
    "xcom",
    "deploys",
    "assets",
    "hitl",
    "import_errors",
)
"""The route modules, in the order their routes are registered."""


def blueprints() -> list[Any]:
    """Every route module's blueprint (importing each)."""
    return [importlib.import_module(f"{__name__}.{module}").bp for module in MODULES]


def __getattr__(name: str) -> Any:
    if name == "ALL_BLUEPRINTS":
        return blueprints()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
