"""The Chalice application: every Lambda entry point, each a few lines into chalicelib.

Decorator arguments are read at import time, so the queue name comes from the
environment (``.chalice/config.json`` per stage) before this module loads.

Every function imports this module. Lambda names the entry point it will call
in ``_HANDLER`` (``app.app`` for the API, ``app.worker``, ...), so the
scheduler and worker functions skip the API's routes and models on their cold
start. Unset (``chalice package``, the local server, tests) everything is
registered. The API function registers its routes from a table and imports a
route's module on the first request to it (``chalicelib.api.lazy_routes``).
"""

from __future__ import annotations

import os
from typing import Any

from chalice import Chalice, Rate

import chalicelib
from chalicelib import api, ui

API_FUNCTION = os.environ.get("_HANDLER", "app.app") == "app.app"
if not API_FUNCTION or "_HANDLER" not in os.environ:
    # powertools' Logger and Metrics: the API function needs them only once a
    # request reaches a route module (api.lazy_routes imports them then).
    from chalicelib import handlers  # noqa: F401

app = Chalice(app_name="slipstream")
if API_FUNCTION:
    api.register(app)
    ui.register(app)
# The stage's queue: set by `stage wire` from the infra stack's outputs, else
# the stack's naming rule for this stage (never another stage's queue).
SCHEDULER_QUEUE = os.environ.get("SLIPSTREAM_QUEUE_NAME") or (
    f"{os.environ.get('SLIPSTREAM_TABLE_PREFIX', 'slipstream')}-"
    f"{os.environ.get('SLIPSTREAM_STAGE', 'dev')}-scheduler"
)


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    """Lets a deploy check or a load balancer see that the API Lambda answers."""
    return {"status": "ok", "version": chalicelib.__version__}


@app.schedule(Rate(1, unit=Rate.MINUTES), name="scheduler_tick")
def scheduler_tick(event: Any) -> dict[str, Any]:
    """Create due runs, fire long timers, reap tries whose worker died."""
    from chalicelib import handlers

    return handlers.schedule_tick()


@app.on_sqs_message(queue=SCHEDULER_QUEUE, batch_size=10, name="scheduler_events")
def scheduler_events(event: Any) -> dict[str, Any]:
    """Run created, task finished, timer fired; EventBridge events arrive here too."""
    from chalicelib import handlers

    return handlers.scheduler_queue(event.to_dict(), event.context)


@app.lambda_function(name="worker")
def worker(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run one try (async-invoked by the Lambda executor)."""
    from chalicelib import handlers

    return handlers.run_worker(event)
