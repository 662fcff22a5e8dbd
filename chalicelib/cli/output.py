"""How remote commands print: a rich table for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

STATE_STYLE = {
    "success": "green",
    "failed": "red",
    "upstream_failed": "red",
    "running": "cyan",
    "queued": "yellow",
    "scheduled": "yellow",
    "up_for_retry": "yellow",
    "up_for_reschedule": "blue",
    "skipped": "magenta",
}


ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]00:00)$")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str) and (match := ISO_TIME.match(value)):
        return f"{match[1]} {match[2]}"  # UTC to the second: tables stay narrow
    if isinstance(value, list | dict):
        return escape(json.dumps(value, default=str))
    return escape(str(value))


def state_cell(state: Any) -> str:
    if state is None:
        return "-"
    style = STATE_STYLE.get(str(state))
    return f"[{style}]{escape(str(state))}[/{style}]" if style else escape(str(state))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def print_rows(
    title: str,
    rows: Iterable[Mapping[str, Any]],
    columns: list[str],
    *,
    styles: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    styles = {"state": state_cell, **(styles or {})}
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(styles.get(c, cell)(row.get(c)) for c in columns))
    Console(highlight=False).print(table)


def print_record(title: str, record: Mapping[str, Any], fields: list[str] | None = None) -> None:
    """One object as a two-column table (field, value)."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name in fields or list(record):
        value = record.get(name)
        table.add_row(name, state_cell(value) if name == "state" else cell(value))
    Console(highlight=False).print(table)


def emit_rows(
    data: Any,
    as_json: bool,
    title: str,
    rows: Iterable[Mapping[str, Any]],
    columns: list[str],
    *,
    styles: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    """What every list command prints: the API's answer whole with ``--json``
    (for scripts), else a table of ``rows``."""
    if as_json:
        print_json(data)
    else:
        print_rows(title, rows, columns, styles=styles)


def emit_record(
    data: Any,
    as_json: bool,
    title: str,
    fields: list[str] | None = None,
    *,
    shown: Mapping[str, Any] | None = None,
) -> None:
    """What every show command prints: the answer with ``--json``, else a
    field/value table of ``shown`` (the answer itself unless given)."""
    if as_json:
        print_json(data)
    else:
        print_record(title, data if shown is None else shown, fields)
