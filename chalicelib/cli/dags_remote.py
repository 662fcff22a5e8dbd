"""``slipstream dags list|show|pause|unpause|trigger``: DAGs on a Slipstream API.

They sit beside the local authoring commands (validate, test, deploy...):
those import DAG files on this machine, these only talk to the API.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chalicelib.cli.main import dags_app
from chalicelib.cli.output import emit_record, emit_rows, print_json
from chalicelib.cli.remote import ApiKey, ApiUrl, AsJson, Client, parse_json_object, quote
from chalicelib.cli.runs import RUN_FIELDS, finish, wait_for_run

DAG_COLUMNS = ["dag_id", "is_paused", "timetable_summary", "next_dagrun_run_after", "tags"]
DAG_FIELDS = [
    "dag_id",
    "dag_display_name",
    "description",
    "is_paused",
    "is_stale",
    "timetable_summary",
    "timetable_description",
    "next_dagrun_logical_date",
    "next_dagrun_run_after",
    "max_active_runs",
    "max_active_tasks",
    "owners",
    "tags",
    "fileloc",
    "bundle_version",
]


def _tags(value: Any) -> str:
    return ", ".join(t.get("name", "") for t in value or [] if isinstance(t, dict)) or "-"


@dags_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The DAGs deployed in your tenant."""
    answer = Client.from_options(api_url, api_key).get("/dags", limit=limit)
    emit_rows(answer, as_json, "DAGs", answer["dags"], DAG_COLUMNS, styles={"tags": _tags})


@dags_app.command("show")
def show_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """One DAG's details."""
    dag = Client.from_options(api_url, api_key).get(f"/dags/{quote(dag_id)}/details")
    shown = {**dag, "tags": _tags(dag.get("tags"))}
    emit_record(dag, as_json, f"DAG {dag_id}", DAG_FIELDS, shown=shown)


def _set_paused(dag_id: str, paused: bool, client: Client, as_json: bool) -> None:
    dag = client.patch(f"/dags/{quote(dag_id)}", {"is_paused": paused}, update_mask="is_paused")
    if as_json:
        print_json(dag)
    else:
        typer.echo(f"{dag_id}: {'paused' if dag['is_paused'] else 'unpaused'}")


@dags_app.command("pause")
def pause_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Pause a DAG: the scheduler creates no runs for it."""
    _set_paused(dag_id, True, Client.from_options(api_url, api_key), as_json)


@dags_app.command("unpause")
def unpause_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Unpause a DAG."""
    _set_paused(dag_id, False, Client.from_options(api_url, api_key), as_json)


@dags_app.command("trigger")
def trigger_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    conf: Annotated[str | None, typer.Option(help="Run conf as a JSON object.")] = None,
    logical_date: Annotated[
        str | None, typer.Option("--logical-date", help="ISO date-time with a zone.")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id to use.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run; exit 1 if it fails.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 3600.0,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Start a run now (a paused DAG runs too, as in Airflow)."""
    client = Client.from_options(api_url, api_key)
    body: dict[str, Any] = {"logical_date": logical_date, "conf": parse_json_object(conf, "--conf")}
    if run_id is not None:
        body["dag_run_id"] = run_id
    run = client.post(f"/dags/{quote(dag_id)}/dagRuns", body)
    if wait:
        if not as_json:
            typer.echo(f"triggered {dag_id} / {run['dag_run_id']}")
        finish(wait_for_run(client, dag_id, run["dag_run_id"], timeout), as_json, timeout)
        return
    emit_record(run, as_json, f"Triggered {dag_id}", RUN_FIELDS)
