"""HttpOperator and HttpHook against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.dag import DAG
from operators.hooks.http import HttpError, HttpHook
from operators.http import HttpOperator, SimpleHttpOperator
from tests.operators.support import LocalHttpServer, http_server, returned, run_operator


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHttpServer]:
    with http_server() as running:
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": running.port,
            "login": "user",
            "password": "pa55word",
            "extra": {"X-Team": "data", "timeout": 5},
        }
        monkeypatch.setenv("AIRFLOW_CONN_API", json.dumps(conn))
        yield running


def test_get_sends_data_as_query_and_returns_the_text(server: LocalHttpServer) -> None:
    server.route("GET", "/items?day=2024-01-01", body={"n": 3})
    result, store = run_operator(
        lambda: HttpOperator(
            task_id="call",
            http_conn_id="api",
            method="GET",
            endpoint="items",
            data={"day": "{{ ds }}"},
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert json.loads(returned(store, "call")) == {"n": 3}
    seen = server.requests[0]
    assert seen.headers["x-team"] == "data"  # extra becomes headers, timeout does not
    assert "timeout" not in seen.headers
    assert seen.headers["authorization"].startswith("Basic ")


def test_post_templates_endpoint_headers_and_body(server: LocalHttpServer) -> None:
    server.route("POST", "/runs/op_dag", status=201, body={"ok": True})
    result, store = run_operator(
        lambda: HttpOperator(
            task_id="call",
            http_conn_id="api",
            endpoint="/runs/{{ dag.dag_id }}",
            data='{"ds": "{{ ds }}"}',
            headers={"Content-Type": "application/json", "X-Run": "{{ run_id }}"},
            response_filter=lambda response: response.json()["ok"],
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert returned(store, "call") is True
    seen = server.requests[0]
    assert json.loads(seen.body) == {"ds": "2024-01-01"}
    assert seen.headers["x-run"].startswith("scheduled__2024-01-01")


def test_response_check_receives_context_and_false_fails_the_try(server: LocalHttpServer) -> None:
    server.route("GET", "/health", body="DOWN")
    seen: dict[str, Any] = {}

    def check(response: Any, ti: Any) -> bool:
        seen["task"] = ti.task_id
        return bool(response.text == "UP")

    result, _ = run_operator(
        lambda: HttpOperator(
            task_id="call",
            http_conn_id="api",
            method="GET",
            endpoint="health",
            response_check=check,
        )
    )
    assert result.state is TaskState.FAILED
    assert result.error == "TaskFailed: Response check returned False."
    assert seen == {"task": "call"}


def test_error_status_fails_with_code_and_reason_and_retries_apply(server: LocalHttpServer) -> None:
    server.route("GET", "/broken", status=503, body="busy")
    result, _ = run_operator(
        lambda: HttpOperator(
            task_id="call", http_conn_id="api", method="GET", endpoint="broken", retries=1
        )
    )
    assert result.state is TaskState.UP_FOR_RETRY
    assert result.error == "HttpError: 503:Service Unavailable"


def test_check_response_false_returns_the_error_body(server: LocalHttpServer) -> None:
    server.route("GET", "/broken", status=500, body="oops")
    result, store = run_operator(
        lambda: HttpOperator(
            task_id="call",
            http_conn_id="api",
            method="GET",
            endpoint="broken",
            extra_options={"check_response": False},
        )
    )
    assert result.state is TaskState.SUCCESS
    assert returned(store, "call") == "oops"


def test_pagination_follows_until_none(server: LocalHttpServer) -> None:
    server.route("GET", "/pages?page=1", body={"items": [1, 2], "next": 2})
    server.route("GET", "/pages?page=2", body={"items": [3], "next": None})

    def next_page(response: Any) -> dict[str, Any] | None:
        following = response.json()["next"]
        return {"data": {"page": following}} if following else None

    result, store = run_operator(
        lambda: HttpOperator(
            task_id="call",
            http_conn_id="api",
            method="GET",
            endpoint="pages",
            data={"page": 1},
            pagination_function=next_page,
            response_filter=lambda responses: [i for r in responses for i in r.json()["items"]],
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert returned(store, "call") == [1, 2, 3]


def test_unreachable_server_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_server() as gone:
        port = gone.port
    monkeypatch.setenv("AIRFLOW_CONN_API", f"http://127.0.0.1:{port}")
    with pytest.raises(HttpError, match=f"cannot reach http://127.0.0.1:{port}/x"):
        HttpHook("GET", http_conn_id="api").run("x")


def test_hook_base_url_from_host_with_scheme_and_headers_argument(
    server: LocalHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULL", json.dumps({"conn_type": "http", "host": server.url + "/api/"})
    )
    server.route("PUT", "/api/v1/thing", body="put")
    hook = HttpHook("PUT", http_conn_id="full")
    response = hook.run("/v1/thing", data="x", headers={"X-One": "1"})
    assert response.text == "put"
    assert server.requests[0].headers["x-one"] == "1"
    assert "authorization" not in server.requests[0].headers


def test_no_connection_means_a_full_url(server: LocalHttpServer) -> None:
    server.route("DELETE", "/thing", body="gone")
    assert HttpHook("DELETE", http_conn_id=None).run(server.url + "/thing").text == "gone"
    with pytest.raises(HttpError, match="no URL to call: endpoint 'thing' with no connection"):
        HttpHook("DELETE", http_conn_id=None).run("thing")


def test_simple_http_operator_is_the_same_class() -> None:
    assert SimpleHttpOperator is HttpOperator


def test_a_dag_with_http_tasks_runs_through_dags_test(server: LocalHttpServer) -> None:
    server.route("GET", "/count", body={"count": 41})
    server.route("POST", "/report", body="stored")
    with DAG("http_pipeline", schedule=None) as dag:
        count = HttpOperator(
            task_id="count",
            http_conn_id="api",
            method="GET",
            endpoint="count",
            response_filter=lambda r: r.json()["count"],
        )
        HttpOperator(
            task_id="report",
            http_conn_id="api",
            endpoint="report",
            data="{{ ti.xcom_pull(task_ids='count') + 1 }}",
        ).set_upstream(count)
    result = run_dag_test(dag, show=False)
    assert result.succeeded, result.reason
    assert server.requests[-1].body == b"42"
