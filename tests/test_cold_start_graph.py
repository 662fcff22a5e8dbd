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

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import app
print(json.dumps({
    "api": "chalicelib.api.routes" in sys.modules,
    "routes": len(app.app.routes),
    "xray": "aws_xray_sdk" in sys.modules,
    "worker_runtime": "chalicelib.runtime.worker" in sys.modules,
    "scheduler": "chalicelib.scheduler.service" in sys.modules,
    "pynamodb": "pynamodb" in sys.modules,
}))
"""


def _imports(handler: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "_HANDLER"}
    env["AWS_LAMBDA_FUNCTION_NAME"] = "slipstream-test"  # powertools: "in Lambda"
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    if handler is not None:
        env["_HANDLER"] = handler
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("handler", ["app.worker", "app.scheduler_tick", "app.scheduler_events"])
def test_a_non_api_function_loads_no_route_no_store_and_no_xray_sdk(handler: str) -> None:
    loaded = _imports(handler)

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

    assert api["api"] is True and everything["api"] is True
    assert api["routes"] == everything["routes"]
    assert int(api["routes"]) > 40  # type: ignore[call-overload]  # paths, not operations
    assert api["xray"] is False and api["worker_runtime"] is False


def test_the_xray_sdk_is_opt_in_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import handlers

    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.delenv("SLIPSTREAM_XRAY_SDK", raising=False)
    assert handlers.tracing_enabled() is False
    monkeypatch.setenv("SLIPSTREAM_XRAY_SDK", "true")
    assert handlers.tracing_enabled() is True
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert handlers.tracing_enabled() is False
