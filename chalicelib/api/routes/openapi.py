"""``/openapi.json``: the API's contract, readable without credentials as
Airflow's is, so that client generators and schemathesis can start from it."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.openapi import document
from chalicelib.api.routing import Call, route

bp = Blueprint(__name__)


@route(bp, "/openapi.json", "GET", role=None, tag="OpenAPI")
def get_openapi(call: Call) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API."""
    return document()
