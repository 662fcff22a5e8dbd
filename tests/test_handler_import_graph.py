"""The scheduler and worker functions' imports leave out chalicelib.wiring and
the pydantic stack its settings models need (issue 8, cold start): a handler
builds its adapters on its first call, so the init phase stays short
(bench/cold_start.py has the times)."""

from __future__ import annotations

import pytest

from tests.test_cold_start_graph import _fresh

DEFERRED = ("chalicelib.wiring", "pydantic", "pydantic_settings", "pydantic_core")

PROBE = """
import json, sys
import app
handler = getattr(app, "{name}")
print(json.dumps({{
    "deferred": sorted(m for m in {deferred!r} if m in sys.modules),
    "handlers": "chalicelib.handlers" in sys.modules,
    "powertools": "aws_lambda_powertools.logging" in sys.modules,
}}))
"""


@pytest.mark.parametrize("name", ["scheduler_tick", "scheduler_events", "worker"])
def test_a_scheduler_or_worker_function_imports_no_wiring_and_no_pydantic(name: str) -> None:
    seen = _fresh(PROBE.format(name=name, deferred=DEFERRED), f"app.{name}")

    assert seen["deferred"] == []
    # what every call uses is still loaded at init: the handlers, Logger and Metrics
    assert seen["handlers"] is True and seen["powertools"] is True


FIRST_TICK = """
import json, sys
import app
from chalicelib import wiring

class Report:
    runs_created, tries_reaped, failures = ["r1"], [], []

class Scheduler:
    def tick(self):
        return Report()

wiring.install_scheduler(Scheduler())
event = {
    "version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events",
    "account": "123456789012", "time": "2026-12-01T00:00:00Z", "region": "us-east-1",
    "resources": [], "detail": {},
}
print(json.dumps({"answer": app.scheduler_tick(event, None)}))
"""


def test_the_tick_finds_wiring_on_its_call() -> None:
    seen = _fresh(FIRST_TICK, "app.scheduler_tick")

    assert seen["answer"] == {"runs_created": ["r1"], "tries_reaped": [], "failures": []}
