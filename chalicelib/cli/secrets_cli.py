"""``slipstream connections`` and ``slipstream variables`` over the API.

Values are sent to the API, which keeps them in Secrets Manager under the
caller's tenant; passwords are never shown back (the API masks them).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_record, emit_rows, print_json
from chalicelib.cli.remote import (
    ApiKey,
    ApiUrl,
    AsJson,
    Client,
    bad_input,
    parse_json_object,
    quote,
)

connections_app = typer.Typer(help="Connections on a Slipstream API.", no_args_is_help=True)
variables_app = typer.Typer(help="Variables on a Slipstream API.", no_args_is_help=True)
app.add_typer(connections_app, name="connections")
app.add_typer(variables_app, name="variables")

CONN_COLUMNS = ["connection_id", "conn_type", "host", "port", "login", "schema", "description"]
Opt = Annotated[str | None, typer.Option()]


@connections_app.command("list")
def connections_list(
    api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Your tenant's connections (no passwords)."""
    answer = Client.from_options(api_url, api_key).get("/connections", limit=1000)
    emit_rows(answer, as_json, "Connections", answer["connections"], CONN_COLUMNS)


@connections_app.command("get")
def connections_get(
    connection_id: Annotated[str, typer.Argument(help="Connection id.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """One connection (its password masked)."""
    conn = Client.from_options(api_url, api_key).get(f"/connections/{quote(connection_id)}")
    emit_record(conn, as_json, f"Connection {connection_id}")


@connections_app.command("add")
def connections_add(
    connection_id: Annotated[str, typer.Argument(help="Connection id.")],
    conn_type: Annotated[str, typer.Option("--conn-type", help="e.g. http, postgres, aws.")],
    host: Opt = None,
    login: Opt = None,
    password: Opt = None,
    schema: Opt = None,
    port: Annotated[int | None, typer.Option()] = None,
    extra: Annotated[str | None, typer.Option(help="Extra as a JSON object.")] = None,
    description: Opt = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Add a connection (an existing id is refused: delete it first)."""
    parse_json_object(extra, "--extra")  # refused here rather than stored broken
    body: dict[str, Any] = {
        "connection_id": connection_id,
        "conn_type": conn_type,
        "host": host,
        "login": login,
        "password": password,
        "schema": schema,
        "port": port,
        "extra": extra,
        "description": description,
    }
    Client.from_options(api_url, api_key).post(
        "/connections", {k: v for k, v in body.items() if v is not None}
    )
    typer.echo(f"added connection {connection_id}")


@connections_app.command("delete")
def connections_delete(
    connection_id: Annotated[str, typer.Argument(help="Connection id.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Delete a connection."""
    Client.from_options(api_url, api_key).delete(f"/connections/{quote(connection_id)}")
    typer.echo(f"deleted connection {connection_id}")


@variables_app.command("list")
def variables_list(api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Your tenant's variables."""
    answer = Client.from_options(api_url, api_key).get("/variables", limit=1000)
    emit_rows(answer, as_json, "Variables", answer["variables"], ["key", "value", "description"])


@variables_app.command("get")
def variables_get(
    key: Annotated[str, typer.Argument(help="Variable key.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """A variable's value, printed bare (for $(...) in scripts)."""
    variable = Client.from_options(api_url, api_key).get(f"/variables/{quote(key)}")
    if as_json:
        print_json(variable)
    else:
        typer.echo(variable.get("value") or "")


@variables_app.command("set")
def variables_set(
    key: Annotated[str, typer.Argument(help="Variable key.")],
    value: Annotated[str, typer.Argument(help="Value (text; --json-value for JSON).")],
    description: Opt = None,
    json_value: Annotated[
        bool, typer.Option("--json-value", help="VALUE is JSON: checked before sending.")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Create or replace a variable."""
    client = Client.from_options(api_url, api_key)
    if json_value:
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            bad_input(f"VALUE is not valid JSON: {exc.msg}")
    body = {"key": key, "value": value, "description": description}
    path = f"/variables/{quote(key)}"
    # Airflow has no upsert: PATCH the existing one, else POST a new one.
    if client.request("GET", path, accept_404=True) is None:
        client.post("/variables", body)
    else:
        client.patch(path, body)
    typer.echo(f"set variable {key}")


@variables_app.command("delete")
def variables_delete(
    key: Annotated[str, typer.Argument(help="Variable key.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Delete a variable."""
    Client.from_options(api_url, api_key).delete(f"/variables/{quote(key)}")
    typer.echo(f"deleted variable {key}")
