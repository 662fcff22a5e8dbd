"""``slipstream pools``: the concurrency pools of a deployment (an operator's job).

Over the API when one is configured (``SLIPSTREAM_API_URL`` or ``--api-url``);
otherwise straight in the stage's store, which needs AWS credentials for it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_rows
from chalicelib.cli.remote import ApiKey, ApiUrl, AsJson, Client, bad_input, configured, quote

pools_app = typer.Typer(help="Create, resize, delete and list pools.", no_args_is_help=True)
app.add_typer(pools_app, name="pools")


def _store() -> Any:
    from chalicelib import wiring

    return wiring.state_store()


@pools_app.command("set")
def set_command(
    name: Annotated[str, typer.Argument(help="Pool name, as tasks give it in pool=...")],
    slots: Annotated[int, typer.Argument(help="How many slots tries of the pool may hold.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Create or resize a pool. Tries in a pool that does not exist wait, as in Airflow."""
    if not name.strip():
        raise typer.BadParameter("a pool needs a name", param_hint="NAME")
    if slots < 0:
        raise typer.BadParameter("slots must be 0 or more", param_hint="SLOTS")
    if configured(api_url):
        # Airflow has no upsert: resize an existing pool, else create it.
        client = Client.from_options(api_url, api_key)
        resized = client.request(
            "PATCH",
            f"/pools/{quote(name)}",
            body={"slots": slots},
            params={"update_mask": "slots"},
            accept_404=True,
        )
        if resized is None:
            client.post("/pools", {"name": name, "slots": slots})
    else:
        _store().set_pool(name, slots)
    typer.echo(f"pool {name}: {slots} slots")


@pools_app.command("list")
def list_command(
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Configured pools with their slots and the slots in use."""
    rows: list[dict[str, Any]]
    if configured(api_url):
        answer = Client.from_options(api_url, api_key).get("/pools", limit=1000)
        rows = [
            {"pool": p["name"], "slots": p["slots"], "used": p["occupied_slots"]}
            for p in answer["pools"]
        ]
    else:
        store = _store()
        rows = [
            {"pool": name, "slots": slots, "used": store.used(f"pool:{name}")}
            for name, slots in sorted(store.pools().items())
        ]
    emit_rows(rows, as_json, "Pools", rows, ["pool", "slots", "used"])


@pools_app.command("delete")
def delete_command(
    name: Annotated[str, typer.Argument(help="Pool name.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Delete a pool; tries that name it wait until it exists again."""
    if configured(api_url):
        Client.from_options(api_url, api_key).delete(f"/pools/{quote(name)}")
    else:
        from chalicelib.store.catalog import Catalog

        if not Catalog(_store()).delete_pool(name):
            bad_input(f"no pool {name!r}")
    typer.echo(f"deleted pool {name}")
