"""Every API route registered at import for the price of reading one JSON file;
a route's module (its pydantic models, the store, the scheduler) is imported by
the first request that reaches it.

Importing all route modules costs the API Lambda most of a second of its cold
start (issue 8, bench/cold_start.py), and a first request uses one of them.
Chalice needs each path and method at import (API Gateway's routes, ``chalice
package``'s swagger, the local server's matcher), so ``route_table.json`` lists
them: path, method, module, view name, docstring and whether a role guards it.
A stub view stands in for each. Its first call imports the module, swaps each
of the module's stub entries on the app for the real one, then hands the
request to the real view; later requests reach the real views directly.

The table is built from the route modules themselves (``python -m
chalicelib.api.lazy_routes --write``) and a test fails when it no longer
matches them (``--check``), so a new or changed route cannot go unlisted.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("route_table.json")
PACKAGE = "chalicelib.api.routes"
_loading = threading.Lock()  # the local server answers in threads
_loaded: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def table() -> list[dict[str, Any]]:
    """The routes, in the order the route modules register them."""
    routes: list[dict[str, Any]] = json.loads(TABLE.read_text(encoding="utf-8"))
    return routes


def register(app: Any) -> None:
    """A stub view per listed route, with the options the real route will have."""
    iam = _iam_authorizer_on()
    _loaded[app] = set()
    for row in table():
        options: dict[str, Any] = {"methods": [row["method"]], "content_types": _content_types()}
        if row["guarded"] and iam:
            from chalice import IAMAuthorizer

            options["authorizer"] = IAMAuthorizer()
        app.route(row["path"], **options)(_stub(app, row))


def load(app: Any, module: str) -> None:
    """Import one route module and put its real views on ``app`` in place of
    its stubs (once; a second caller waits for the first).

    Each stub's entry is replaced by the real one in a single assignment, so a
    request another thread of the local server routes meanwhile finds one or
    the other, never neither (``register_blueprint`` would refuse the stubs'
    paths as duplicates, and removing them first would open that gap)."""
    with _loading:
        loaded = _loaded[app]
        if module in loaded:
            return
        # The API's log lines go through powertools' "slipstream" logger, as
        # in the scheduler and worker functions (handlers configures it).
        import chalicelib.handlers  # noqa: F401

        blueprint = importlib.import_module(f"{PACKAGE}.{module}").bp
        routes = _registered(blueprint)
        # The real views read the request through their blueprint, which the
        # scratch registration pointed at the scratch app; Chalice 1.34 has
        # no public way to point it back.
        blueprint._current_app = app
        for path, methods in routes.items():
            for method, entry in methods.items():
                app.routes[path][method] = entry
        loaded.add(module)


def _registered(blueprint: Any) -> dict[str, dict[str, Any]]:
    """The route entries ``blueprint`` registers, by path and method (on a
    scratch app: the real app already holds the stubs' entries)."""
    from chalice import Chalice

    scratch = Chalice(app_name="route-table")
    scratch.register_blueprint(blueprint)
    return dict(scratch.routes)


def _stub(app: Any, row: dict[str, Any]) -> Callable[..., Any]:
    path, method, module = row["path"], row["method"], row["module"]

    def view(**params: str) -> Any:
        load(app, module)
        real = app.routes.get(path, {}).get(method)
        if real is None or real.view_function is view:
            raise LookupError(
                f"{method} {path}: {PACKAGE}.{module} does not register it; "
                "regenerate the table: python -m chalicelib.api.lazy_routes --write"
            )
        return real.view_function(**params)

    view.__name__ = row["view"]
    view.__doc__ = row["doc"]
    return view


def _content_types() -> list[str]:
    """routing.JSON_CONTENT_TYPES, which every route uses (the table check
    compares them), without importing routing's pydantic."""
    return ["application/json", "application/x-www-form-urlencoded", "text/plain"]


def _iam_authorizer_on() -> bool:
    """``SLIPSTREAM_API_AUTH=iam``, read by the same settings class as the real
    routes; unset (the default, ``keys``) it costs no pydantic-settings import.
    pydantic-settings matches environment names case-insensitively, so this does."""
    if not any(name.lower() == "slipstream_api_auth" for name in os.environ):
        return False
    from chalicelib.api.auth import iam_settings

    return iam_settings().api_auth == "iam"


def build_table() -> list[dict[str, Any]]:
    """The table as the route modules register their routes now, each module's
    blueprint on a scratch app (run in a fresh interpreter: registering moves a
    blueprint's ``current_app`` to the scratch app)."""
    from chalicelib.api.routes import MODULES, blueprints
    from chalicelib.api.routing import JSON_CONTENT_TYPES, OPERATIONS

    rows = []
    every = blueprints()  # imports every route module: fills OPERATIONS
    guarded = {(op.path, op.method.upper()): op.role is not None for op in OPERATIONS}
    for module, blueprint in zip(MODULES, every, strict=True):
        for path, methods in _registered(blueprint).items():
            for method, entry in methods.items():
                if entry.content_types != JSON_CONTENT_TYPES:
                    raise SystemExit(f"{method} {path}: content types differ from routing's")
                rows.append(
                    {
                        "path": path,
                        "method": method,
                        "module": module,
                        "view": entry.view_name,
                        "doc": entry.view_function.__doc__,
                        "guarded": guarded[(path, method)],
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="The API's route table (route_table.json).")
    parser.add_argument("--write", action="store_true", help="rewrite the table")
    args = parser.parse_args(argv)
    rows = build_table()
    if args.write:
        TABLE.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        print(f"{TABLE}: {len(rows)} routes")
        return 0
    listed = table()
    if rows == listed:
        print(f"{TABLE.name} matches the route modules ({len(rows)} routes)")
        return 0
    missing = [f"{r['method']} {r['path']}" for r in rows if r not in listed]
    stale = [f"{r['method']} {r['path']}" for r in listed if r not in rows]
    print(
        f"{TABLE.name} does not match the route modules: unlisted or changed {missing}, "
        f"stale {stale}; run: python -m chalicelib.api.lazy_routes --write",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
