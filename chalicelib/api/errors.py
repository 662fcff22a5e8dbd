"""HTTP errors in Airflow's shape: ``{"detail": ...}`` with the status that says why.

Only the API layer maps errors to statuses; the layers below raise their own
typed errors, which the route decorator translates.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400

    def __init__(self, detail: Any):
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


def validation_detail(errors: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI (and so Airflow) reports them: loc starts with
    where the value came from (``query``, ``body``, ``path``)."""
    detail = []
    for error in errors:
        item = {
            "type": error.get("type", "value_error"),
            "loc": [where, *error.get("loc", ())],
            "msg": error.get("msg", "invalid value"),
            "input": error.get("input"),
        }
        if item["input"] is not None and not isinstance(item["input"], str | int | float | bool):
            item["input"] = repr(item["input"])[:200]
        detail.append(item)
    return detail
