"""``slipstream backfill``: backfills over the API: create (and follow), list,
show, pause, unpause, cancel.

``create`` first asks the API for a dry run of the same request: its dates are
the backfill's work, so the progress bar can say "7 of 30 runs finished" by
counting the backfill runs on those dates that ended. It then creates the
backfill and, unless ``--no-wait``, follows it on stderr (so ``--json`` stdout
stays one document) until the backfill completes. The exit code is the
verdict: 0 when every run succeeded, 1 when a run failed, the backfill was
cancelled, or ``--timeout`` passed first.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_record, emit_rows, print_json
from chalicelib.cli.remote import (
    EXIT_FAILED,
    ApiKey,
    ApiUrl,
    AsJson,
    Client,
    bad_input,
    fail,
    parse_json_object,
    quote,
)

backfill_app = typer.Typer(help="Backfills on a Slipstream API.", no_args_is_help=True)
app.add_typer(backfill_app, name="backfill")

POLL_SECONDS = 2.0
PAGE = 100
BACKFILL_FIELDS = [
    "id",
    "dag_id",
    "from_date",
    "to_date",
    "reprocess_behavior",
    "max_active_runs",
    "is_paused",
    "dag_run_conf",
    "created_at",
    "completed_at",
]
LIST_COLUMNS = ["id", "from_date", "to_date", "is_paused", "created_at", "completed_at"]

DONE = {"pause": "paused", "unpause": "unpaused", "cancel": "cancelled"}

BackfillId = Annotated[int, typer.Argument(help="Backfill id (create and list print it).")]


class Reprocess(StrEnum):
    none = "none"
    failed = "failed"
    completed = "completed"


@dataclass
class Tally:
    """How a backfill's runs ended so far."""

    success: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.success + self.failed


def _iso(value: str, option: str) -> str:
    """The date as the API wants it: ISO 8601 with a zone (UTC when none is given)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        bad_input(f"{option}: not an ISO 8601 date or time: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.isoformat()


def _tally(client: Client, dag_id: str, body: dict[str, Any], dates: set[str]) -> Tally:
    """Finished backfill runs on the backfill's own dates (earlier backfills' runs
    on other dates of the range do not count)."""
    tally = Tally()
    offset = 0
    while True:
        page = client.get(
            f"/dags/{quote(dag_id)}/dagRuns",
            run_type="backfill",
            state=["success", "failed"],
            logical_date_gte=body["from_date"],
            logical_date_lte=body["to_date"],
            limit=PAGE,
            offset=offset,
        )
        for run in page["dag_runs"]:
            if _same_instant(run.get("logical_date"), dates):
                if run.get("state") == "success":
                    tally.success += 1
                else:
                    tally.failed += 1
        offset += PAGE
        if offset >= page["total_entries"] or not page["dag_runs"]:
            return tally


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _same_instant(value: str | None, dates: set[str]) -> bool:
    return value is not None and _instant(value).isoformat() in dates


def _follow(
    client: Client, backfill: dict[str, Any], body: dict[str, Any], dates: set[str], timeout: float
) -> tuple[dict[str, Any], Tally]:
    """Poll until the backfill completes (or the deadline), drawing its progress."""
    deadline = time.monotonic() + timeout
    path = f"/backfills/{backfill['id']}"
    console = Console(stderr=True, highlight=False)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
    )
    label = f"backfill {backfill['id']} of {backfill['dag_id']}"
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(label, total=len(dates) or None)
        while True:
            backfill = client.get(path)
            tally = _tally(client, backfill["dag_id"], body, dates)
            state = "paused" if backfill.get("is_paused") else "running"
            if tally.failed:
                state += f", {tally.failed} failed"
            progress.update(
                bar, completed=min(tally.finished, len(dates)), description=f"{label} ({state})"
            )
            if backfill.get("completed_at") is not None or time.monotonic() > deadline:
                return backfill, tally
            time.sleep(POLL_SECONDS)


@backfill_app.command("create")
def create_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    from_date: Annotated[
        str, typer.Option("--from-date", help="First logical date (ISO 8601; UTC if no zone).")
    ],
    to_date: Annotated[str, typer.Option("--to-date", help="Last logical date, included.")],
    reprocess_behavior: Annotated[
        Reprocess,
        typer.Option(
            "--reprocess-behavior",
            help="Dates that already have a run: none skips them, failed reruns failed"
            " ones, completed reruns every finished one.",
        ),
    ] = Reprocess.none,
    max_active_runs: Annotated[
        int, typer.Option("--max-active-runs", min=1, help="Runs of this backfill at once.")
    ] = 10,
    run_backwards: Annotated[
        bool, typer.Option("--run-backwards", help="Newest date first.")
    ] = False,
    dag_run_conf: Annotated[
        str | None, typer.Option("--dag-run-conf", help="conf of every run, a JSON object.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the dates it would run; create nothing.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the backfill and return at once.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Stop following after this many seconds (exit 1).")
    ] = 86400.0,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Create a backfill and follow it with a progress bar until it completes."""
    client = Client.from_options(api_url, api_key)
    body: dict[str, Any] = {
        "dag_id": dag_id,
        "from_date": _iso(from_date, "--from-date"),
        "to_date": _iso(to_date, "--to-date"),
        "run_backwards": run_backwards,
        "dag_run_conf": parse_json_object(dag_run_conf, "--dag-run-conf") or {},
        "reprocess_behavior": reprocess_behavior.value,
        "max_active_runs": max_active_runs,
    }
    planned = client.post("/backfills/dry_run", body)
    if dry_run:
        rows = planned["backfills"]
        emit_rows(
            planned, as_json, f"Dates a backfill of {dag_id} would run", rows, ["logical_date"]
        )
        return
    dates = {_instant(d["logical_date"]).isoformat() for d in planned["backfills"]}
    backfill = client.post("/backfills", body)
    if no_wait:
        emit_record(backfill, as_json, f"Backfill {backfill['id']}", BACKFILL_FIELDS)
        return
    backfill, tally = _follow(client, backfill, body, dates, timeout)
    emit_record(backfill, as_json, f"Backfill {backfill['id']}", BACKFILL_FIELDS)
    summary = f"{len(dates)} runs planned: {tally.success} succeeded, {tally.failed} failed"
    Console(stderr=True, highlight=False).print(summary)
    if backfill.get("completed_at") is None:
        fail("", f"backfill {backfill['id']} still running after {timeout:g}s", EXIT_FAILED)
    if backfill.get("is_paused"):
        fail("", f"backfill {backfill['id']} was cancelled", EXIT_FAILED)
    if tally.failed:
        raise typer.Exit(EXIT_FAILED)


@backfill_app.command("list")
def list_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    limit: Annotated[int, typer.Option(help="At most this many.")] = 25,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """A DAG's backfills, newest first."""
    client = Client.from_options(api_url, api_key)
    answer = client.get("/backfills", dag_id=dag_id, limit=limit, order_by="-id")
    emit_rows(answer, as_json, f"Backfills of {dag_id}", answer["backfills"], LIST_COLUMNS)


@backfill_app.command("show")
def show_command(
    backfill_id: BackfillId,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """One backfill."""
    answer = Client.from_options(api_url, api_key).get(f"/backfills/{backfill_id}")
    emit_record(answer, as_json, f"Backfill {backfill_id}", BACKFILL_FIELDS)


def _act(
    backfill_id: int, action: str, api_url: str | None, api_key: str | None, as_json: bool
) -> None:
    client = Client.from_options(api_url, api_key)
    answer = client.request("PUT", f"/backfills/{backfill_id}/{action}")
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"backfill {backfill_id}: {DONE[action]}")


@backfill_app.command("pause")
def pause_command(
    backfill_id: BackfillId, api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Start no more runs of the backfill; running ones finish."""
    _act(backfill_id, "pause", api_url, api_key, as_json)


@backfill_app.command("unpause")
def unpause_command(
    backfill_id: BackfillId, api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Let a paused backfill start runs again."""
    _act(backfill_id, "unpause", api_url, api_key, as_json)


@backfill_app.command("cancel")
def cancel_command(
    backfill_id: BackfillId, api_url: ApiUrl = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """End the backfill: its queued runs fail, running ones finish."""
    _act(backfill_id, "cancel", api_url, api_key, as_json)
