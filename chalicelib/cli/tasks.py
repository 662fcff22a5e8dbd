"""``slipstream tasks``: the task instances of a run, their logs, and clearing them."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_rows, print_json
from chalicelib.cli.remote import ApiKey, ApiUrl, AsJson, Client, bad_input, quote
from chalicelib.cli.runs import POLL_SECONDS, DagId, RunId, run_path

tasks_app = typer.Typer(help="Task instances on a Slipstream API.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

TI_COLUMNS = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration"]
TaskId = Annotated[str, typer.Argument(help="Task id.")]
WRITING = ("running", "queued", "scheduled", "deferred", "restarting", "up_for_reschedule")


@tasks_app.command("list")
def list_command(
    dag_id: DagId,
    run_id: RunId,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The task instances of a run."""
    client = Client.from_options(api_url, api_key)
    answer = client.get(f"{run_path(dag_id, run_id)}/taskInstances", limit=1000)
    title = f"Tasks of {dag_id} / {run_id}"
    emit_rows(answer, as_json, title, answer["task_instances"], TI_COLUMNS)


def _line(entry: dict[str, Any]) -> str:
    parts = [str(entry[k]) for k in ("timestamp", "level") if entry.get(k)]
    return " ".join([*parts, str(entry.get("event", ""))])


@tasks_app.command("logs")
def logs_command(
    dag_id: DagId,
    run_id: RunId,
    task_id: TaskId,
    try_number: Annotated[
        int | None, typer.Option("--try", help="Try number (default: the latest).")
    ] = None,
    map_index: Annotated[int, typer.Option("--map-index", help="Mapped index.")] = -1,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the try ends.")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """A try's log lines (secrets masked by the API)."""
    client = Client.from_options(api_url, api_key)
    ti_path = f"{run_path(dag_id, run_id)}/taskInstances/{quote(task_id)}"
    if try_number is None:
        ti = client.get(ti_path if map_index < 0 else f"{ti_path}/{map_index}")
        try_number = max(int(ti.get("try_number") or 0), 1)
    if try_number < 1:
        bad_input("--try must be 1 or more")
    logs = f"{ti_path}/logs/{try_number}"
    token: str | None = None
    printed = 0  # lines of the page at ``token`` already shown
    finishing = False
    while True:
        page = client.get(logs, map_index=map_index, token=token)
        content = page.get("content", [])
        for entry in content[printed:]:
            typer.echo(_line(entry))
        next_token = page.get("continuation_token")
        if next_token is not None and next_token != token:
            token, printed = next_token, 0  # a further page is ready
            continue
        # No further page: the log ends here, or the try is still writing it.
        if not follow or finishing:
            return
        printed = len(content)
        finishing = _try_over(client, ti_path, map_index, try_number)
        if not finishing:
            time.sleep(POLL_SECONDS)


def _try_over(client: Client, ti_path: str, map_index: int, try_number: int) -> bool:
    """Whether the try writes no more: it ended, or a later try began. One more read
    of the log follows, for the lines written just before it ended."""
    ti = client.get(ti_path if map_index < 0 else f"{ti_path}/{map_index}")
    return int(ti.get("try_number") or 0) > try_number or ti.get("state") not in WRITING


@tasks_app.command("clear")
def clear_command(
    dag_id: DagId,
    run_id: RunId,
    task_ids: Annotated[list[str], typer.Argument(help="Task ids to clear.")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Clear their downstream tasks too.")
    ] = False,
    only_failed: Annotated[
        bool, typer.Option("--only-failed", help="Only tasks that failed.")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Clear task instances of a run so that they run again."""
    body = {
        "dag_run_id": run_id,
        "task_ids": task_ids,
        "dry_run": False,
        "only_failed": only_failed,
        "include_downstream": downstream,
    }
    answer = Client.from_options(api_url, api_key).post(
        f"/dags/{quote(dag_id)}/clearTaskInstances", body
    )
    if as_json:
        print_json(answer)
        return
    cleared = (answer or {}).get("task_instances", [])
    typer.echo(f"cleared {len(cleared)} task instances of {dag_id} / {run_id}")
