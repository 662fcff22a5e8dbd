"""``slipstream operators list``: the operators this environment can run.

Built-in operators come from the ``operators`` library; plugins from installed
distributions' ``slipstream.operators`` entry points (chalicelib/sdk/plugins.py).
A plugin entry that does not import is listed with its error and makes the
exit code 1, so CI notices a broken plugin before a deploy does.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chalicelib.cli.main import app

operators_app = typer.Typer(
    help="Operators: built in and from installed plugins.", no_args_is_help=True
)
app.add_typer(operators_app, name="operators")


@operators_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
    plugins_only: Annotated[
        bool, typer.Option("--plugins", help="Only operators registered by plugins.")
    ] = False,
) -> None:
    """List operators: name, module, the package that provides it, and its version.

    Exit code 1 when a plugin's entry point does not import.
    """
    from chalicelib.sdk.plugins import (
        PluginError,
        builtin_operators,
        load_operator,
        plugin_operators,
    )

    rows: list[dict[str, Any]] = []
    entries = ([] if plugins_only else builtin_operators()) + plugin_operators()
    broken = 0
    for entry in entries:
        row: dict[str, Any] = {**asdict(entry), "error": None}
        if not entry.builtin:
            try:
                load_operator(entry.name)
            except PluginError as exc:
                row["error"] = str(exc)
                broken += 1
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print(rows)
    if broken:
        raise typer.Exit(1)


def _print(rows: list[dict[str, Any]]) -> None:
    console = Console()
    if not rows:
        console.print("no operators")
        return
    table = Table(title="Operators", title_justify="left")
    for column in ("name", "module", "package", "version"):
        table.add_column(column, overflow="fold")  # module paths are long; never cut them
    for row in rows:
        package = (
            escape(row["package"]) if row["builtin"] else f"[cyan]{escape(row['package'])}[/cyan]"
        )
        name = escape(row["name"])
        if row["error"]:
            name = f"[red]{name}[/red]"
        table.add_row(name, escape(row["module"]), package, escape(row["version"]))
    console.print(table)
    err = Console(stderr=True, soft_wrap=True)
    for row in rows:
        if row["error"]:
            err.print(f"[red]{escape(row['error'])}[/red]", highlight=False)
