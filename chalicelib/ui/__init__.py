"""The web UI: plain ES modules (no build step) served by the API Lambda under ``/ui/``.

``assets`` reads the files in ``static/`` once per container and gives each a
versioned name, an ETag and a gzip copy; ``routes`` serves them. The UI's
JavaScript talks only to the public ``/api/v2`` endpoints.
"""

from __future__ import annotations

from typing import Any

TEXT_TYPES = ["text/html", "text/javascript", "text/css", "image/svg+xml"]


def register(app: Any) -> None:
    """Serve the UI from ``app``: its blueprint, and its types as binary (gzip bodies)."""
    from chalicelib.ui.routes import bp

    for content_type in TEXT_TYPES:
        if content_type not in app.api.binary_types:
            app.api.binary_types.append(content_type)
    app.register_blueprint(bp)
