"""The API Lambda's Chalice app served over HTTP on this machine, as ``chalice
local`` serves it: the same app.py, routes and handlers, in a thread.

Each request runs the view the API Gateway event would reach, so a script or
``apache-airflow-client`` pointed at ``http://127.0.0.1:8080`` sees what it
would see against a deployment.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger("slipstream.local")

APP_FILE = Path(__file__).resolve().parents[2] / "app.py"


def load_app_module() -> ModuleType:
    """app.py, imported once: its decorators read the environment, so the local
    stack's environment must be in place first."""
    existing = sys.modules.get("app")
    if existing is not None and getattr(existing, "__file__", None) == str(APP_FILE):
        return existing
    spec = importlib.util.spec_from_file_location("app", APP_FILE)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {APP_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


class ApiServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 8080, *, quiet: bool = True):
        self.host = host
        self.port = port
        self.quiet = quiet
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        from chalice.config import Config
        from chalice.local import (
            ChaliceRequestHandler,
            CustomLocalChalice,
            LocalChalice,
            LocalDevServer,
        )

        quiet = self.quiet

        class Handler(ChaliceRequestHandler):
            # Chalice writes the head and the body of an answer in separate
            # sends; with Nagle's algorithm the body then waits for the
            # client's delayed ACK, about 40 ms on every request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                if not quiet:
                    super().log_message(format, *args)

        app = load_app_module().app
        if not isinstance(app, LocalChalice):
            # What ``chalice local`` does: each request thread gets its own
            # current_request (the ThreadedHTTPServer serves requests at once).
            CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
            app.__class__ = CustomLocalChalice
        config = Config.create(chalice_stage="local", app_name="slipstream", lambda_timeout=60)
        self._server = LocalDevServer(app, config, self.host, self.port, handler_cls=Handler)
        quiet_disconnects(self._server.server)
        self.port = self._server.server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.server.serve_forever, name="slipstream-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.server.shutdown()
            self._server.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def quiet_disconnects(server: Any) -> None:
    """A client that goes away mid-answer (a closed tab, a timed-out curl) makes
    socketserver print a traceback to the developer's terminal; it is not an
    error of the server, so say nothing. Anything else is still reported."""
    report = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        report(request, client_address)

    server.handle_error = handle_error
