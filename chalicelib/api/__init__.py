"""The REST API: Apache Airflow 3's API v2 shape under ``/api/v2``, Slipstream's
own resources under ``/api/v2/slipstream``.

One Chalice blueprint per resource (``routes/``), pydantic request and response
models beside them (``datamodels/``), authentication and roles in ``auth``,
and one route decorator (``routing``) that validates input, checks the
caller's role and turns every error into Airflow's ``{"detail": ...}`` shape.
The API never imports user DAG code: it reads specs and state only.
"""

from __future__ import annotations

from typing import Any

API_PREFIX = "/api/v2"


def register(app: Any) -> None:
    """Register every route on the Chalice ``app``; each resource's module is
    imported when a request first reaches one of its routes (``lazy_routes``)."""
    from chalicelib.api import lazy_routes

    lazy_routes.register(app)
