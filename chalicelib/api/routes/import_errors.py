"""``/importErrors``: the DAG files the caller's tenant's last deploy refused.

Slipstream records them when a deploy is refused and clears them when one
succeeds (store/import_errors.py), so unlike Airflow's, which a DAG processor
keeps per parsed file, they always describe one deploy.
"""

from __future__ import annotations

import dataclasses

from chalice import Blueprint

from chalicelib import wiring
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.import_errors import (
    ImportErrorCollection,
    ImportErrorQuery,
    ImportErrorResponse,
)
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routes.dags import like
from chalicelib.api.routing import Call, route
from chalicelib.store.import_errors import ImportError_, ImportErrors

bp = Blueprint(__name__)
TAG = "Import Error"


def _errors() -> ImportErrors:
    return ImportErrors(wiring.state_store().models.event_log)


def _response(error: ImportError_) -> ImportErrorResponse:
    return ImportErrorResponse(**dataclasses.asdict(error))  # the same fields, one for one


@route(
    bp,
    "/importErrors",
    "GET",
    role=Role.VIEWER,
    query=ImportErrorQuery,
    response=ImportErrorCollection,
    tag=TAG,
)
def get_import_errors(call: Call) -> ImportErrorCollection:
    """List the files the last deploy refused, with the problems found in each."""
    query: ImportErrorQuery = call.query
    order = query.order_by.replace("stacktrace", "stack_trace")
    everything = _errors().list(call.who.tenant, limit=10**6, order_by=order).items
    pattern = query.filename_pattern
    chosen = [e for e in everything if not pattern or like(pattern, e.filename)]
    page = chosen[query.offset : query.offset + query.limit]
    return ImportErrorCollection(
        import_errors=[_response(e) for e in page], total_entries=len(chosen)
    )


@route(
    bp,
    "/importErrors/{import_error_id}",
    "GET",
    role=Role.VIEWER,
    response=ImportErrorResponse,
    tag=TAG,
)
def get_import_error(call: Call) -> ImportErrorResponse:
    """Get one import error."""
    text = call.path["import_error_id"]
    if not text.isdigit():
        raise BadRequest(f"import_error_id must be an integer, not {text!r}")
    error = _errors().get(call.who.tenant, int(text))
    if error is None:
        raise NotFound(f"The ImportError with import_error_id: `{text}` was not found")
    return _response(error)
