"""``slipstream runs``: DAG runs over the API: list, show, wait, clear, mark.

``wait`` (and ``dags trigger --wait``) polls the run once a second until it
finishes, with a live status on stderr so that ``--json`` output stays clean;
the exit code is the run's verdict: 0 success, 1 failed (or not finished in
``--timeout``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_record, emit_rows, print_json
from chalicelib.cli.remote import (
    EXIT_FAILED,
    ApiKey,
    ApiUrl,
    AsJson,
    Client,
    fail,
    quote,
)

runs_app = typer.Typer(help="DAG runs on a Slipstream API.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

POLL_SECONDS = 1.0
FINISHED = ("success", "failed")
RUN_COLUMNS = ["dag_run_id", "state", "run_type", "logical_date", "start_date", "end_date"]
RUN_FIELDS = [*RUN_COLUMNS, "run_after", "duration", "conf", "triggered_by", "note"]

DagId = Annotated[str, typer.Argument(help="DAG id.")]
RunId = Annotated[str, typer.Argument(help="Run id (dag_run_id).")]


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}"


def wait_for_run(client: Client, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    """Poll the run until it finishes or the deadline passes; returns its last state."""
    deadline = time.monotonic() + timeout
    console = Console(stderr=True, highlight=False)
    with console.status(f"{dag_id} / {run_id}: ...") as status:
        while True:
            run: dict[str, Any] = client.get(run_path(dag_id, run_id))
            state = run.get("state")
            status.update(f"{dag_id} / {run_id}: {state}")
            if state in FINISHED or time.monotonic() + POLL_SECONDS > deadline:
                return run
            time.sleep(POLL_SECONDS)


def finish(run: dict[str, Any], as_json: bool, timeout: float) -> None:
    """Print the finished run and exit with its verdict."""
    emit_record(run, as_json, f"Run {run.get('dag_run_id')}", RUN_FIELDS)
    state = run.get("state")
    if state not in FINISHED:
        fail("", f"run is still {state} after {timeout:g}s", EXIT_FAILED)
    if state != "success":
        raise typer.Exit(EXIT_FAILED)


@runs_app.command("list")
def list_command(
    dag_id: DagId,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 25,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """A DAG's runs, newest first."""
    client = Client.from_options(api_url, api_key)
    answer = client.get(f"/dags/{quote(dag_id)}/dagRuns", limit=limit, order_by="-run_after")
    emit_rows(answer, as_json, f"Runs of {dag_id}", answer["dag_runs"], RUN_COLUMNS)


@runs_app.command("show")
def show_command(
    dag_id: DagId,
    run_id: RunId,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """One run."""
    run = Client.from_options(api_url, api_key).get(run_path(dag_id, run_id))
    emit_record(run, as_json, f"Run {run_id}", RUN_FIELDS)


@runs_app.command("wait")
def wait_command(
    dag_id: DagId,
    run_id: RunId,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 3600.0,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Wait for a run to finish: exit 0 when it succeeded, 1 when it failed or timed out."""
    client = Client.from_options(api_url, api_key)
    finish(wait_for_run(client, dag_id, run_id, timeout), as_json, timeout)


@runs_app.command("clear")
def clear_command(
    dag_id: DagId,
    run_id: RunId,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Clear every task of a run so that it runs again."""
    answer = Client.from_options(api_url, api_key).post(
        f"{run_path(dag_id, run_id)}/clear", {"dry_run": False}
    )
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"cleared {dag_id} / {run_id}")


def _mark(dag_id: str, run_id: str, state: str, client: Client, as_json: bool) -> None:
    run = client.patch(run_path(dag_id, run_id), {"state": state}, update_mask="state")
    if as_json:
        print_json(run)
    else:
        typer.echo(f"{dag_id} / {run_id}: {state}")


@runs_app.command("mark-failed")
def mark_failed_command(
    dag_id: DagId,
    run_id: RunId,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Mark a run failed (its unfinished tasks stop being scheduled)."""
    _mark(dag_id, run_id, "failed", Client.from_options(api_url, api_key), as_json)


@runs_app.command("mark-success")
def mark_success_command(
    dag_id: DagId,
    run_id: RunId,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Mark a run successful."""
    _mark(dag_id, run_id, "success", Client.from_options(api_url, api_key), as_json)
