"""The Chalice application: every Lambda entry point, each a few lines into chalicelib.

Only the health check exists so far; the runtime issue adds the scheduler,
worker, queue and event handlers, and the API issue registers its blueprints.
"""

from __future__ import annotations

from chalice import Chalice

import chalicelib

app = Chalice(app_name="slipstream")


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    """Lets a deploy check or a load balancer see that the API Lambda answers."""
    return {"status": "ok", "version": chalicelib.__version__}
