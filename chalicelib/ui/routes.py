"""Routes of the UI: ``/`` and ``/ui`` redirect to ``/ui/``, which serves
``index.html``; ``/ui/{name}`` serves a versioned asset.

Each answer carries its ETag (``If-None-Match`` gets a 304), is gzipped when
the browser accepts it, and says how long it may be cached (assets a year,
the page never without asking). No key is needed: the files hold no data.
"""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.ui.assets import Asset, bundle

bp = Blueprint(__name__)


def _redirect(to: str) -> Response:
    return Response(body="", status_code=302, headers={"Location": to})


def _headers() -> dict[str, str]:
    request = bp.current_request
    return {k.lower(): v for k, v in (request.headers or {}).items()}


def serve(asset: Asset, headers: dict[str, str]) -> Response:
    common = {
        "ETag": asset.etag,
        "Cache-Control": asset.cache_control,
        "Vary": "Accept-Encoding",
        "Content-Type": asset.content_type,
        "X-Content-Type-Options": "nosniff",
    }
    sent = headers.get("if-none-match", "")
    if asset.etag in [t.strip().removeprefix("W/") for t in sent.split(",")]:
        return Response(body=b"", status_code=304, headers=common)
    if "gzip" in headers.get("accept-encoding", ""):
        return Response(
            body=asset.gzipped, status_code=200, headers={**common, "Content-Encoding": "gzip"}
        )
    return Response(body=asset.body, status_code=200, headers=common)


@bp.route("/", methods=["GET"])
def root() -> Response:
    """The API's root is the UI."""
    return _redirect("/ui/")


@bp.route("/ui", methods=["GET"])
def ui_page() -> Response:
    """The page itself (assets are referenced relative to it)."""
    return serve(bundle()["index.html"], _headers())


@bp.route("/ui/{name}", methods=["GET"])
def ui_asset(name: str) -> Response:
    """A versioned asset; an unknown or outdated name answers 404."""
    asset = bundle().get(name)
    if asset is None or name == "index.html":
        return Response(
            body=f"no UI asset {name!r}\n",
            status_code=404,
            headers={"Content-Type": "text/plain", "Cache-Control": "no-cache"},
        )
    return serve(asset, _headers())
