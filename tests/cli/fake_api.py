"""A stand-in HTTP API that records requests and answers what a test scripts.

For commands whose endpoints the real API does not have yet (clear, mark),
and for answers the real API rarely gives (5xx, a run that failed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class FakeApi:
    url: str
    # (method, path without query) -> [(status, body), ...]; the last answer repeats
    answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def answer(self, method: str, path: str, *replies: tuple[int, Any]) -> None:
        self.answers[(method, path)] = list(replies)

    def reply(self, method: str, path: str) -> tuple[int, Any]:
        queue = self.answers.get((method, path.split("?", 1)[0]))
        if not queue:
            return 404, {"detail": f"fake API has no {method} {path}"}
        return queue.pop(0) if len(queue) > 1 else queue[0]


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    state: dict[str, FakeApi] = {}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            api = state["api"]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.requests.append(
                Recorded(
                    self.command,
                    self.path,
                    json.loads(raw) if raw else None,
                    self.headers.get("Authorization"),
                )
            )
            status, body = api.reply(self.command, self.path)
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["api"] = FakeApi(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["api"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
