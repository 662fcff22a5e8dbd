"""The OpenAPI 3.1 document, built from the routes' own registry (``OPERATIONS``).

The pydantic models that validate a request and shape an answer are the ones
documented, so the document cannot drift from what the API does: a client
generator or schemathesis reads exactly the contract the code enforces.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import chalicelib
from chalicelib.api.routing import OPERATIONS, Operation

REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "HTTPBearer"
PATH_PARAM = re.compile(r"\{(\w+)\}")

HTTP_EXCEPTION = {
    "title": "HTTPExceptionResponse",
    "type": "object",
    "properties": {"detail": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "title": "ValidationError",
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "input": {},
    },
    "required": ["type", "loc", "msg"],
}
HTTP_VALIDATION_ERROR = {
    "title": "HTTPValidationError",
    "type": "object",
    "properties": {
        "detail": {"type": "array", "items": {"$ref": REF.format(model="ValidationError")}}
    },
    "required": ["detail"],
}
ERROR_WHY = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Error",
}
WRITES = ("post", "patch", "put", "delete")


@functools.cache
def document() -> dict[str, Any]:
    """Built once per container, on the first request for it: the registry is
    fixed once every route module is imported."""
    from chalicelib.api.routes import blueprints

    blueprints()  # imports every route module: fills OPERATIONS

    return build(OPERATIONS)


def build(operations: list[Operation]) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "HTTPExceptionResponse": HTTP_EXCEPTION,
        "ValidationError": VALIDATION_ERROR,
        "HTTPValidationError": HTTP_VALIDATION_ERROR,
    }
    refs = _model_refs(operations, schemas)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Slipstream",
            "version": chalicelib.__version__,
            "description": "Airflow 3's REST API v2, served by Slipstream's API Lambda.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}},
        },
    }


def _model_refs(
    operations: list[Operation], schemas: dict[str, Any]
) -> dict[tuple[type[BaseModel], str], dict[str, Any]]:
    """Every body and response model in one pass, so that a model shared by many
    routes is named once, and one that differs between what the API accepts and
    what it answers gets two names instead of one overwriting the other."""
    wanted: list[tuple[type[BaseModel], Any]] = []
    for op in operations:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.response is not None:
            wanted.append((op.response, "serialization"))
    unique = list(dict.fromkeys(wanted))
    if not unique:
        return {}
    refs, definitions = models_json_schema(unique, by_alias=True, ref_template=REF)
    schemas.update(definitions.get("$defs", {}))
    return refs  # type: ignore[return-value]


def _operation(
    op: Operation,
    refs: dict[tuple[type[BaseModel], str], dict[str, Any]],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        parameters.extend(_query_parameters(op.query, schemas))
    item: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.tag:
        item["tags"] = [op.tag]
    if parameters:
        item["parameters"] = parameters
    if op.body is not None:
        item["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    item["responses"] = _responses(op, refs)
    if op.role is not None:
        item["security"] = [{SECURITY_SCHEME: []}]
        item["description"] = f"Needs an API key with role `{op.role.label}` or higher."
    return item


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, by_alias=True, mode="validation")
    for name, definition in schema.get("$defs", {}).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are both named {name!r}")
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if _is_array(prop):
            parameter["style"] = "form"
            parameter["explode"] = True
        parameters.append(parameter)
    return parameters


def _is_array(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(_is_array(option) for option in schema.get("anyOf", ()))


def _responses(
    op: Operation, refs: dict[tuple[type[BaseModel], str], dict[str, Any]]
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.status == 204:
        responses["204"] = {"description": "Successful Response"}
    else:
        schema = refs[(op.response, "serialization")] if op.response else {"type": "object"}
        responses[str(op.status)] = {
            "description": "Successful Response",
            "content": {"application/json": {"schema": schema}},
        }
    errors = [400]
    if op.role is not None:
        errors += [401, 403]
    if PATH_PARAM.search(op.path) or op.method in WRITES:
        errors.append(404)
    if op.method in WRITES:
        errors.append(409)
    for status in errors:
        responses[str(status)] = _error(status, "HTTPExceptionResponse")
    if op.query is not None or op.body is not None:
        responses["422"] = _error(422, "HTTPValidationError")
    return responses


def _error(status: int, model: str) -> dict[str, Any]:
    return {
        "description": ERROR_WHY[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
    }
