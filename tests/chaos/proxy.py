"""A fault-injecting HTTP proxy between the local stack and moto.

Every AWS call the stack, its scheduler and its worker processes make goes to
``SLIPSTREAM_ENDPOINT_URL``; pointed here, each call meets one seeded draw:

- **refused**: answered at once with throttling (JSON services: a 400
  ``ThrottlingException``; others: a 503), never reaching moto;
- **ambiguous**: moto applies the request, then the caller gets a 500 as if
  the reply were lost (the SDK retries a write that already happened);
- **delayed**: held 20-300 ms before it is forwarded;
- **duplicated delivery**: an SQS ReceiveMessage is answered, and the messages
  it returned are made visible again at once, so they are delivered twice;
- otherwise forwarded untouched.

Draws come from one ``random.Random(seed)``; with many threads calling, which
request gets which draw depends on timing, so a seed fixes the mix, not the
exact sequence. Counts of every fault given are kept for the report.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length"}


@dataclass(frozen=True)
class FaultMix:
    """Probabilities per call; the rest is forwarded untouched."""

    refused: float = 0.10
    ambiguous: float = 0.10
    delayed: float = 0.05
    duplicated: float = 0.05  # of ReceiveMessage calls that return messages

    @classmethod
    def none(cls) -> FaultMix:
        return cls(0.0, 0.0, 0.0, 0.0)


def _service(headers: Any) -> str:
    """The signing service from SigV4's credential scope (…/region/SERVICE/aws4_request)."""
    auth = headers.get("Authorization") or ""
    marker = "Credential="
    if marker not in auth:
        return "unknown"
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) > 3 else "unknown"


class FaultProxy:
    def __init__(self, upstream: str, mix: FaultMix, seed: int) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.mix = mix
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        self.enabled = threading.Event()  # off while the stack sets itself up
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="chaos-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------ requests

    def _draw(self) -> float:
        with self._lock:
            return self._random.random()

    def _count(self, fault: str) -> None:
        with self._lock:
            self.faults[fault] += 1

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        target = request.headers.get("X-Amz-Target") or ""
        service = _service(request.headers)
        mix = self.mix if self.enabled.is_set() else FaultMix.none()
        draw = self._draw()
        refused = draw < mix.refused
        delayed = mix.refused <= draw < mix.refused + mix.delayed
        ambiguous = mix.refused + mix.delayed <= draw < mix.refused + mix.delayed + mix.ambiguous
        if refused:
            self._count(f"refused:{service}")
            self._refuse(request, json_protocol=bool(target))
            return
        if delayed:
            self._count(f"delayed:{service}")
            time.sleep(0.02 + self._draw() * 0.28)
        status, headers, answer = self._forward(request, body)
        if ambiguous:
            self._count(f"ambiguous:{service}")
            self._lost_reply(request, json_protocol=bool(target))
            return
        receive = target.endswith(".ReceiveMessage") and status == 200
        if receive and self._draw() < mix.duplicated and self._redeliver(request, body, answer):
            self._count("duplicated:sqs")
        self._reply(request, status, headers, answer)

    def _forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            return response.status, response.getheaders(), answer
        finally:
            connection.close()

    def _redeliver(self, request: BaseHTTPRequestHandler, body: bytes, answer: bytes) -> bool:
        """Make the received messages visible again now: the next receive gets them too."""
        try:
            messages = json.loads(answer).get("Messages") or []
            queue_url = json.loads(body)["QueueUrl"]
        except (ValueError, KeyError):
            return False
        if not messages:
            return False
        change = {
            "QueueUrl": queue_url,
            "Entries": [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        }
        payload = json.dumps(change).encode()
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["X-Amz-Target"] = "AmazonSQS.ChangeMessageVisibilityBatch"
            headers["Content-Length"] = str(len(payload))
            connection.request("POST", request.path, body=payload, headers=headers)
            return connection.getresponse().status == 200
        finally:
            connection.close()

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        request.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() not in ("date", "server"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)

    def _refuse(self, request: BaseHTTPRequestHandler, *, json_protocol: bool) -> None:
        if json_protocol:
            body = json.dumps(
                {"__type": "ThrottlingException", "message": "chaos: rate exceeded"}
            ).encode()
            headers = [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-query-error", "ThrottlingException;Sender"),
            ]
            self._reply(request, 400, headers, body)
        else:
            body = b"<Error><Code>SlowDown</Code><Message>chaos: slow down</Message></Error>"
            self._reply(request, 503, [("Content-Type", "application/xml")], body)

    def _lost_reply(self, request: BaseHTTPRequestHandler, *, json_protocol: bool) -> None:
        if json_protocol:
            body = json.dumps(
                {"__type": "InternalServerError", "message": "chaos: reply lost"}
            ).encode()
            self._reply(request, 500, [("Content-Type", "application/x-amz-json-1.0")], body)
        else:
            body = b"<Error><Code>InternalError</Code><Message>chaos: reply lost</Message></Error>"
            self._reply(request, 500, [("Content-Type", "application/xml")], body)
