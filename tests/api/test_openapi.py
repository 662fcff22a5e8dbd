"""The OpenAPI document: valid OpenAPI 3.1, complete, and served without a key."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from chalicelib.api.openapi import document
from chalicelib.api.routes import ALL_BLUEPRINTS  # noqa: F401  (fills OPERATIONS)
from chalicelib.api.routing import OPERATIONS
from tests.api.served import Served


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return document()


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_registered_operation_is_documented_once(spec: dict[str, Any]) -> None:
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented == {(op.path, op.method) for op in OPERATIONS}
    ids = [op.operation_id for op in OPERATIONS]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_security_follows_roles(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer"}
    for op in OPERATIONS:
        item = spec["paths"][op.path][op.method]
        if op.role is None:
            assert "security" not in item, op.path
            assert "401" not in item["responses"]
        else:
            assert item["security"] == [{"HTTPBearer": []}]
            assert {"401", "403"} <= set(item["responses"])


def test_parameters_bodies_and_responses(spec: dict[str, Any]) -> None:
    dags = spec["paths"]["/api/v2/dags"]["get"]
    tags = next(p for p in dags["parameters"] if p["name"] == "tags")
    assert tags["schema"]["type"] == "array"
    assert (tags["style"], tags["explode"]) == ("form", True)
    assert dags["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DagCollection"
    }
    assert dags["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"
    }
    run = spec["paths"]["/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}"]
    assert [p["name"] for p in run["get"]["parameters"]] == ["dag_id", "dag_run_id"]
    assert all(p["in"] == "path" and p["required"] for p in run["get"]["parameters"])
    assert "content" not in run["delete"]["responses"]["204"]
    body = run["patch"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/DagRunPatchBody")
    # A connection is answered with "schema" (its alias), never "schema_".
    conn = spec["components"]["schemas"]["ConnectionResponse"]
    assert "schema" in conn["properties"] and "schema_" not in conn["properties"]


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    names = set(spec["components"]["schemas"])

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(spec):
        assert ref.removeprefix("#/components/schemas/") in names, ref


def test_served_without_credentials(served: Served) -> None:
    answer = served.call("GET", "/openapi.json", role=None)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    served_spec = answer.json()
    assert served_spec == document()
    item = served_spec["paths"]["/api/v2/openapi.json"]["get"]
    assert "security" not in item and item["operationId"] == "get_openapi"
