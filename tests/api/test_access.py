"""Every route against every role, and every resource across tenants.

The matrix reads the routes from the API's own registry, so a new route is
checked the day it is added. Allowed callers are sent to ids that do not
exist (or an empty body), so they get 404 or 422 without changing anything:
what matters is that they are never refused with 401 or 403.
"""

from __future__ import annotations

import re

import pytest

from chalicelib import wiring
from chalicelib.api.auth import Role
from chalicelib.api.routes import ALL_BLUEPRINTS  # noqa: F401  (fills OPERATIONS)
from chalicelib.api.routing import OPERATIONS, Operation
from chalicelib.store.import_errors import ImportErrors
from tests.api.served import ROLES, Served

MISSING = {
    "dag_id": "no_such_dag",
    "dag_run_id": "no_such_run",
    "task_id": "no_such_task",
    "map_index": "0",
    "version_number": "99",
    "pool_name": "no_such_pool",
    "connection_id": "no_such_conn",
    "variable_key": "no_such_var",
    "event_log_id": "1",
    "key_id": "no_such_key",
    "try_number": "1",
    "task_try_number": "1",
    "xcom_key": "return_value",
    "backfill_id": "999999",
    "asset_id": "1",
    "import_error_id": "1",
}
API = "/api/v2"


def _path(operation: Operation, values: dict[str, str]) -> str:
    path = operation.path.removeprefix(API)
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _send(served: Served, operation: Operation, path: str, role: str | None, tenant: str):
    kwargs = {}
    if operation.body is not None:
        kwargs["json"] = {}
    return served.call(operation.method.upper(), path, role=role, tenant=tenant, **kwargs)


GUARDED = [op for op in OPERATIONS if op.role is not None]


def _id(op: Operation) -> str:
    return f"{op.method.upper()} {op.path.removeprefix(API)}"


@pytest.mark.parametrize("operation", GUARDED, ids=_id)
def test_each_route_refuses_no_key_and_lesser_roles(served: Served, operation: Operation) -> None:
    path = _path(operation, MISSING)
    anonymous = _send(served, operation, path, None, "default")
    assert anonymous.status_code == 401, anonymous.text
    assert "detail" in anonymous.json()
    bad_key = served.call(
        operation.method.upper(), path, role=None, headers={"Authorization": "Bearer ssk_x_y"}
    )
    assert bad_key.status_code == 401
    for role in ROLES:
        answer = _send(served, operation, path, role, "default")
        if Role.parse(role) < operation.role:
            assert answer.status_code == 403, (role, answer.text)
            assert operation.role.label in answer.json()["detail"]
        else:
            assert answer.status_code not in (401, 403, 405, 500), (role, answer.text)


def test_open_routes_need_no_key(served: Served) -> None:
    open_routes = [op for op in OPERATIONS if op.role is None]
    assert {(op.method, op.path) for op in open_routes} == {
        ("get", f"{API}/version"),
        ("get", f"{API}/monitor/health"),
        ("get", f"{API}/openapi.json"),
        ("post", f"{API}/slipstream/session"),  # exchanging a one-time code is signing in
    }
    for operation in open_routes:
        if operation.method == "get":
            answer = served.call("GET", operation.path.removeprefix(API), role=None)
            assert answer.status_code == 200


@pytest.fixture(scope="module")
def default_ids(served: Served) -> dict[str, str]:
    """Real ids of tenant default's objects of every kind."""
    run = served.call("POST", "/dags/etl_hourly/dagRuns", json={"dag_run_id": "seen-by-default"})
    assert run.status_code == 200, run.text
    conn = served.call(
        "POST", "/connections", json={"connection_id": "default_only", "conn_type": "http"}
    )
    assert conn.status_code == 201, conn.text
    var = served.call("POST", "/variables", json={"key": "default_only", "value": "x"})
    assert var.status_code == 201, var.text
    backfill = served.call(
        "POST",
        "/backfills",
        json={
            "dag_id": "branching",
            "from_date": "2024-01-01T00:00:00Z",
            "to_date": "2024-01-02T00:00:00Z",
        },
    )
    assert backfill.status_code == 200, backfill.text
    events = served.call("GET", "/eventLogs").json()["event_logs"]
    refused = ImportErrors(wiring.state_store().models.event_log).replace(
        "default", {"dags/not_deployed.py": "dags/not_deployed.py:1: broken"}, wiring.utc_now()
    )
    keys = served.call("GET", "/slipstream/keys").json()["api_keys"]
    return {
        "dag_id": "etl_hourly",
        "dag_run_id": "seen-by-default",
        "task_id": "extract",
        "map_index": "0",
        "version_number": "1",
        "pool_name": "no_such_pool",
        "connection_id": "default_only",
        "variable_key": "default_only",
        "event_log_id": str(events[0]["event_log_id"]),
        "key_id": keys[0]["key_id"],
        "try_number": "1",
        "task_try_number": "1",
        "xcom_key": "return_value",
        "backfill_id": str(backfill.json()["id"]),
        "import_error_id": str(refused[0].import_error_id),
    }


TENANT_SCOPED = [
    op
    for op in GUARDED
    # pools and assets are deployment-wide; the batch run list names no DAG in its path ("~")
    if "{" in op.path
    and "{pool_name}" not in op.path
    and "{asset_id}" not in op.path
    and not op.path.endswith("/dagRuns/list")
]


VALID_BODIES = {
    "patch_dag": {"is_paused": True},
    "trigger_dag_run": {"conf": {}},
    "patch_dag_run": {"note": "taken over"},
    "patch_connection": {"connection_id": "default_only", "conn_type": "http", "host": "evil"},
    "patch_variable": {"key": "default_only", "value": "overwritten"},
    "post_clear_task_instances": {"dag_run_id": "seen-by-default", "dry_run": False},
    "clear_dag_run": {"dry_run": False},
    "patch_task_instance": {"new_state": "success"},
    "patch_task_instance_dry_run": {"new_state": "success"},
    "patch_task_instance_by_map_index": {"new_state": "success"},
    "patch_task_instance_dry_run_by_map_index": {"new_state": "success"},
    "update_hitl_detail": {"chosen_options": ["Approve"]},
    "update_hitl_detail_v310": {"chosen_options": ["Approve"]},
    "update_mapped_hitl_detail_v310": {"chosen_options": ["Approve"]},
}


@pytest.mark.parametrize("operation", TENANT_SCOPED, ids=_id)
def test_another_tenants_objects_are_not_found(
    served: Served, default_ids: dict[str, str], operation: Operation
) -> None:
    """Reads and writes alike: a valid request for another tenant's object is a 404."""
    path = _path(operation, default_ids)
    kwargs = {}
    if operation.body is not None:
        kwargs["json"] = VALID_BODIES[operation.operation_id]
    answer = served.call(operation.method.upper(), path, tenant="acme", **kwargs)
    assert answer.status_code == 404, answer.text


def test_another_tenants_objects_stay_out_of_lists_and_unchanged(
    served: Served, default_ids: dict[str, str]
) -> None:
    def ids(path: str, field: str, key: str, tenant: str) -> set[str]:
        answer = served.call("GET", path, tenant=tenant)
        assert answer.status_code == 200, answer.text
        return {item[key] for item in answer.json()[field]}

    assert ids("/dags", "dags", "dag_id", "acme") == {"acme_only"}
    assert ids("/dags/~/dagRuns", "dag_runs", "dag_id", "acme") <= {"acme_only"}
    batch = served.call(
        "POST", "/dags/~/dagRuns/list", tenant="acme", json={"dag_ids": ["etl_hourly"]}
    )
    assert batch.status_code == 200 and batch.json()["dag_runs"] == []
    acme_tis = served.call("GET", "/dags/~/dagRuns/~/taskInstances", tenant="acme").json()
    assert all(ti["dag_id"] == "acme_only" for ti in acme_tis["task_instances"])
    assert "acme_only" not in ids("/dags", "dags", "dag_id", "default")
    assert "default_only" not in ids("/connections", "connections", "connection_id", "acme")
    assert "default_only" not in ids("/variables", "variables", "key", "acme")
    acme_events = served.call("GET", "/eventLogs", tenant="acme").json()["event_logs"]
    assert all(e["dag_id"] != "etl_hourly" for e in acme_events)
    assert default_ids["key_id"] not in ids("/slipstream/keys", "api_keys", "key_id", "acme")
    assert ids("/importErrors", "import_errors", "filename", "acme") == set()
    # Writes through another tenant's key changed nothing of default's.
    assert served.call("GET", "/dags/etl_hourly").json()["is_paused"] is False
    assert served.call("GET", "/connections/default_only").json()["host"] is None
    assert served.call("GET", "/variables/default_only").json()["value"] == "x"
    run = served.call("GET", "/dags/etl_hourly/dagRuns/seen-by-default").json()
    assert run["note"] is None
    runs = served.call("GET", "/dags/etl_hourly/dagRuns").json()["dag_runs"]
    assert "seen-by-default" in {r["dag_run_id"] for r in runs}
    key = served.call("GET", "/slipstream/keys").json()["api_keys"][0]
    assert key["revoked_at"] is None
