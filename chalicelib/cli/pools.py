"""``slipstream pools``: the concurrency pools of a deployment (an operator's job)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chalicelib.cli.main import app

pools_app = typer.Typer(help="Create, resize and list pools.", no_args_is_help=True)
app.add_typer(pools_app, name="pools")


def _store():  # type: ignore[no-untyped-def]
    from chalicelib import wiring

    return wiring.state_store()


@pools_app.command("set")
def set_command(
    name: Annotated[str, typer.Argument(help="Pool name, as tasks give it in pool=...")],
    slots: Annotated[int, typer.Argument(help="How many slots tries of the pool may hold.")],
) -> None:
    """Create or resize a pool. Tries in a pool that does not exist wait, as in Airflow."""
    if not name.strip():
        raise typer.BadParameter("a pool needs a name", param_hint="NAME")
    if slots < 0:
        raise typer.BadParameter("slots must be 0 or more", param_hint="SLOTS")
    _store().set_pool(name, slots)
    typer.echo(f"pool {name}: {slots} slots")


@pools_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Configured pools with their slots and the slots in use."""
    store = _store()
    rows = [
        {"pool": name, "slots": slots, "used": store.used(f"pool:{name}")}
        for name, slots in sorted(store.pools().items())
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Pools", title_justify="left")
    for column in ("pool", "slots", "used"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["pool"], str(row["slots"]), str(row["used"]))
    Console().print(table)
