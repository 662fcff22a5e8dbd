"""Running one operator through the real runtime, and a local HTTP server to call."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.runs import DagRun
from chalicelib.runtime import InMemoryXComStore, TryRequest, TryResult, execute_try
from chalicelib.sdk.dag import DAG
from tests.runtime.runtime_doubles import Clock, scheduled_run


def run_operator(
    build: Callable[[], Any],
    *,
    dag_id: str = "op_dag",
    run: DagRun | None = None,
    **dag_kwargs: Any,
) -> tuple[TryResult, InMemoryXComStore]:
    """Build the operator inside a DAG and run its first try as a worker would."""
    with DAG(dag_id, **dag_kwargs) as dag:
        operator = build()
    spec = dag.to_spec(validate=False)
    request = TryRequest(
        dag=dag, spec=spec, run=run or scheduled_run(dag_id), task_id=operator.task_id
    )
    store = InMemoryXComStore()
    return execute_try(request, store, clock=Clock()), store


def returned(store: InMemoryXComStore, task_id: str) -> Any:
    found, value = store.pull(task_id, -1, "return_value")
    assert found, f"{task_id} pushed no return_value"
    return value


@dataclass
class Recorded:
    """What the test server saw of one request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalHttpServer:
    """A server on 127.0.0.1 that answers from ``routes`` and records every request."""

    port: int
    routes: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, status: int = 200, body: Any = "") -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.routes[(method, path)] = (status, text)


@contextmanager
def http_server() -> Iterator[LocalHttpServer]:
    state = LocalHttpServer(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            status, text = state.routes.get((self.command, self.path), (404, "no such route"))
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
