"""Each Lambda function imports only what it uses (issue 8, cold start).

Run in fresh interpreters: what matters is the module graph a Lambda's init
phase loads, and this process has imported everything already. The times are
bench/cold_start.py's; these tests pin the graph that makes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import chalicelib

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import app
print(json.dumps({
    "api": "chalicelib.api.routes" in sys.modules,
    "heavy": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY),
    "routes": len(app.app.routes),
    "xray": "aws_xray_sdk" in sys.modules,
    "worker_runtime": "chalicelib.runtime.worker" in sys.modules,
    "scheduler": "chalicelib.scheduler.service" in sys.modules,
    "pynamodb": "pynamodb" in sys.modules,
}))
"""


# What the API function's import must not load: pydantic (every route's models),
# pydantic-settings, the AWS SDKs, pynamodb and powertools come with the first
# request, and only with the route module it reaches.
HEAVY = (
    "pydantic",
    "pydantic_settings",
    "pydantic_core",
    "boto3",
    "botocore",
    "pynamodb",
    "aws_lambda_powertools",
    "aws_xray_sdk",
)


def _fresh(script: str, handler: str | None, **env_vars: str) -> dict[str, Any]:
    """What ``script`` prints last (JSON), run in a fresh interpreter as the
    Lambda function ``handler`` (every function when None)."""
    env = {k: v for k, v in os.environ.items() if k != "_HANDLER"}
    env["AWS_LAMBDA_FUNCTION_NAME"] = "slipstream-test"  # powertools: "in Lambda"
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env.update(env_vars)
    if handler is not None:
        env["_HANDLER"] = handler
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


def _imports(handler: str | None) -> dict[str, Any]:
    return _fresh(f"HEAVY = {HEAVY!r}" + PROBE, handler)


@pytest.mark.parametrize("handler", ["app.worker", "app.scheduler_tick", "app.scheduler_events"])
def test_a_non_api_function_loads_no_route_no_store_and_no_xray_sdk(handler: str) -> None:
    loaded = _imports(handler)
    loaded.pop("heavy")  # powertools, pydantic: theirs to use

    assert loaded == {
        "api": False,
        "routes": 1,  # /health only
        "xray": False,
        "worker_runtime": False,
        "scheduler": False,
        "pynamodb": False,
    }


def test_the_api_function_and_chalice_package_register_every_route() -> None:
    api = _imports("app.app")
    everything = _imports(None)

    assert api["routes"] == everything["routes"]
    assert int(api["routes"]) > 40  # paths, not operations
    assert api["xray"] is False and api["worker_runtime"] is False


def test_the_api_function_imports_no_route_module_models_or_aws_sdk() -> None:
    api = _imports("app.app")

    assert api["api"] is False  # chalicelib.api.routes: not even the package
    assert api["heavy"] == []
    assert api["pynamodb"] is False and api["scheduler"] is False


FIRST_REQUEST = """
import json, sys
from chalice.test import Client
import app
with Client(app.app) as client:
    answer = client.http.get("/api/v2/version")
    again = client.http.get("/api/v2/version")
routes = app.app.routes
print(json.dumps({
    "status": [answer.status_code, again.status_code],
    "same": answer.body == again.body,
    "body": json.loads(answer.body),
    "loaded": sorted(m for m in sys.modules if m.startswith("chalicelib.api.routes.")),
    "version_view": routes["/api/v2/version"]["GET"].view_function.__module__,
    "dags_view": routes["/api/v2/dags"]["GET"].view_function.__module__,
}))
"""


def test_a_first_request_imports_only_the_route_module_it_reaches() -> None:
    seen = _fresh(FIRST_REQUEST, "app.app")

    assert seen["status"] == [200, 200] and seen["same"] is True
    assert seen["body"]["version"] == chalicelib.__version__
    assert seen["loaded"] == ["chalicelib.api.routes.monitor"]
    assert seen["version_view"] == "chalicelib.api.routes.monitor"  # the real view now
    assert seen["dags_view"] == "chalicelib.api.lazy_routes"  # still its stand-in


NO_GAP = """
import json
from chalice import Chalice
from chalicelib.api import lazy_routes

class NoRemoval(dict):
    def pop(self, *args):
        raise AssertionError(f"an entry was removed: {args[0]}")
    def __delitem__(self, key):
        raise AssertionError(f"an entry was removed: {key}")

app = Chalice(app_name="probe")
lazy_routes.register(app)
for path in list(app.routes):
    app.routes[path] = NoRemoval(app.routes[path])
order = [(path, list(methods)) for path, methods in app.routes.items()]
lazy_routes.load(app, "dags")
entries = [e for methods in app.routes.values() for e in methods.values()]
print(json.dumps({
    "order_kept": order == [(path, list(methods)) for path, methods in app.routes.items()],
    "real": sorted({e.view_function.__module__ for e in entries}),
}))
"""


def test_loading_a_route_module_swaps_each_entry_in_place() -> None:
    """The local server answers in threads: a request routed while a module
    loads must find the stub or the real view, never a missing method."""
    seen = _fresh(NO_GAP, "app.app")

    assert seen["order_kept"] is True
    assert seen["real"] == ["chalicelib.api.lazy_routes", "chalicelib.api.routes.dags"]


def test_the_route_table_lists_exactly_what_the_route_modules_register() -> None:
    """Fails when a route is added or changed without ``--write``."""
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.api.lazy_routes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr


SWAGGER = """
import json
from chalice import Chalice
from chalice.deploy.swagger import SwaggerGenerator
import app
from chalicelib.api.routes import blueprints
def paths(chalice_app):
    deployed = {"api_handler_arn": "arn:aws:lambda:us-east-1:1:function:x", "api_handler_name": "x"}
    doc = SwaggerGenerator("us-east-1", deployed).generate_swagger(chalice_app)
    return [(path, ops) for path, ops in doc["paths"].items() if path.startswith("/api/v2")]
eager = Chalice(app_name="slipstream")
for blueprint in blueprints():
    eager.register_blueprint(blueprint)
lazy = paths(app.app)
print(json.dumps({"same": lazy == paths(eager), "paths": len(lazy)}))
"""


@pytest.mark.parametrize("auth", ["keys", "iam"])
def test_chalice_package_sees_the_same_api_as_with_every_module_imported(auth: str) -> None:
    """API Gateway's routes, authorizers, content types and summaries are the
    ones the route modules declare, with or without the IAM authorizer."""
    seen = _fresh(SWAGGER, None, SLIPSTREAM_API_AUTH=auth)

    assert seen["same"] is True and seen["paths"] > 40


def test_the_xray_sdk_is_opt_in_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import handlers

    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.delenv("SLIPSTREAM_XRAY_SDK", raising=False)
    assert handlers.tracing_enabled() is False
    monkeypatch.setenv("SLIPSTREAM_XRAY_SDK", "true")
    assert handlers.tracing_enabled() is True
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert handlers.tracing_enabled() is False
