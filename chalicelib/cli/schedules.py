"""``slipstream dags next-runs`` and ``slipstream dags due``: a DAG's schedule, made visible.

``due`` answers "why did my DAG not run?" by showing exactly the runs the
scheduler would create at a given moment; ``next-runs`` shows what comes
next. Both read only the DAG's spec and call the same pure timetable code the
scheduler uses, so what they print is what the scheduler does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from chalicelib.cli.asset_schedules import (
    asset_wait,
    asset_wait_text,
    is_asset_scheduled,
    normalized,
)
from chalicelib.cli.main import dags_app
from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.data_intervals import DagRunInfo, DataInterval, as_utc
from chalicelib.core.errors import DagValidationError, ScheduleError, SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.core.timetable_base import NullTimetable, OnceTimetable
from chalicelib.core.timetables import (
    AnyTimetable,
    due_runs,
    interval_for_logical_date,
    next_runs,
    time_restriction,
    timetable_from_schedule,
)
from chalicelib.core.timezones import localize, resolve_timezone

EXIT_USER_ERROR = 2
"""Bad arguments: unknown DAG id, unreadable file, a date that is not ISO 8601."""
EXIT_DAG_INVALID = 1
"""The DAG file imported but the DAG (or its schedule) is not valid."""

DEFAULT_COUNT = 5


class CliUsageError(Exception):
    """An argument the user can fix; printed without a traceback."""


# --------------------------------------------------------------------------- logic


def dag_timetable(spec: DagSpec) -> AnyTimetable:
    """The spec's timetable, validated, with the DAG timezone filled in if it had none."""
    return timetable_from_schedule(spec.timetable, spec.timezone)


def plan_next_runs(spec: DagSpec, *, after: dt.datetime, count: int) -> list[DagRunInfo]:
    """The next ``count`` runs after ``after``, whatever catchup says."""
    return next_runs(
        dag_timetable(spec),
        start_date=spec.start_date,
        end_date=spec.end_date,
        after=after,
        count=count,
        timezone=spec.timezone,
    )


def plan_due_runs(
    spec: DagSpec, *, now: dt.datetime, last_logical_date: dt.datetime | None = None
) -> list[DagRunInfo]:
    """The runs the scheduler would create at ``now`` after the run at ``last_logical_date``."""
    timetable = dag_timetable(spec)
    return due_runs(
        timetable,
        start_date=spec.start_date,
        end_date=spec.end_date,
        catchup=spec.catchup,
        last_automated_data_interval=_last_interval(timetable, last_logical_date),
        now=now,
        timezone=spec.timezone,
    )


def _last_interval(
    timetable: AnyTimetable, last_logical_date: dt.datetime | None
) -> DataInterval | None:
    if last_logical_date is None:
        return None
    return interval_for_logical_date(timetable, last_logical_date)


def explain_nothing_due(
    spec: DagSpec, *, now: dt.datetime, last_logical_date: dt.datetime | None = None
) -> str:
    """Why no run is due at ``now``, in the words a user searching for the cause needs."""
    timetable = dag_timetable(spec)
    tz = resolve_timezone(spec.timezone)
    if isinstance(timetable, NullTimetable):
        return "schedule=None: this DAG runs only when triggered (manually, by API or event)."
    if spec.start_date is None:
        return "The DAG has no start_date, so the scheduler never creates runs for it."
    last = _last_interval(timetable, last_logical_date)
    if isinstance(timetable, OnceTimetable) and last is not None:
        return "schedule='@once' and the DAG has already run once."
    upcoming = timetable.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=time_restriction(
            timetable, spec.start_date, spec.end_date, spec.catchup, timezone=spec.timezone
        ),
        now=now,
    )
    if upcoming is None:
        if spec.end_date is not None:
            return f"No run remains before the DAG's end_date ({_both(spec.end_date, tz)})."
        return "The schedule produces no further run."
    return (
        f"Nothing is due yet: the next run (logical date "
        f"{_both(upcoming.logical_date, tz)}) may start after {_both(upcoming.run_after, tz)}."
    )


def run_records(spec: DagSpec, runs: list[DagRunInfo]) -> list[dict[str, Any]]:
    """One JSON-ready record per run: every date in the DAG's timezone and in UTC."""
    tz = resolve_timezone(spec.timezone)
    timetable = dag_timetable(spec)
    words = schedule_in_words(timetable)
    records: list[dict[str, Any]] = []
    for run in runs:
        record: dict[str, Any] = {}
        for name, value in _run_dates(run):
            record[name] = value.astimezone(tz).isoformat()
            record[f"{name}_utc"] = as_utc(value).isoformat()
        record["timezone"] = spec.timezone
        record["schedule"] = timetable.summary
        record["schedule_description"] = words
        records.append(record)
    return records


def _run_dates(run: DagRunInfo) -> list[tuple[str, dt.datetime]]:
    return [
        ("run_after", run.run_after),
        ("logical_date", run.logical_date),
        ("data_interval_start", run.data_interval.start),
        ("data_interval_end", run.data_interval.end),
    ]


def schedule_in_words(timetable: AnyTimetable) -> str:
    """The cron in words for cron timetables; the timetable's own sentence otherwise."""
    if isinstance(timetable, CronTriggerTimetable | CronDataIntervalTimetable):
        return timetable.description or timetable.expression
    return timetable.description


def parse_when(text: str, *, option: str, timezone: str) -> dt.datetime:
    """An ISO 8601 date or datetime; without an offset it is wall-clock time in the DAG's zone."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliUsageError(
            f"{option}: {text!r} is not an ISO 8601 date or datetime "
            "(for example 2024-03-10 or 2024-03-10T02:00:00+00:00)"
        ) from None
    if value.tzinfo is None:
        value = localize(value, resolve_timezone(timezone))
    return as_utc(value)


# --------------------------------------------------------------------------- output


def _both(value: dt.datetime, tz: dt.tzinfo) -> str:
    return f"{_local_text(value, tz)} ({_local_text(value, dt.timezone.utc)})"


def _local_text(value: dt.datetime, tz: dt.tzinfo) -> str:
    local = value.astimezone(tz)
    name = "UTC" if tz is dt.timezone.utc else local.tzname() or local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {name}"


def _print_table(spec: DagSpec, runs: list[DagRunInfo], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    tz = resolve_timezone(spec.timezone)
    timetable = dag_timetable(spec)
    words = schedule_in_words(timetable)
    caption = f"schedule {timetable.summary}"
    if words and words != timetable.summary:
        caption += f" — {words}"
    caption += f"; timezone {spec.timezone}"
    table = Table(title=title, caption=caption)
    table.add_column("#", justify="right")
    for header in ("run_after", "logical_date", "data_interval_start", "data_interval_end"):
        table.add_column(f"{header}\n{spec.timezone} / UTC", no_wrap=True)
    for number, run in enumerate(runs, start=1):
        cells = [
            f"{_local_text(value, tz)}\n{_local_text(value, dt.timezone.utc)}"
            for _, value in _run_dates(run)
        ]
        table.add_row(str(number), *cells)
    Console().print(table)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _load_spec(path: str, dag_id: str) -> DagSpec:
    """Import the DAG file (imported late: the loader pulls in the whole SDK)."""
    from chalicelib.sdk.loader import load_dag_spec

    return load_dag_spec(path, dag_id)


def _load_or_exit(path: str, dag_id: str) -> DagSpec:
    try:
        return _load_spec(path, dag_id)
    except DagValidationError as exc:
        problems = "\n".join(f"  {problem}" for problem in exc.problems) or f"  {exc}"
        raise _fail(
            f"DAG {dag_id!r} in {path} is not valid:\n{problems}", EXIT_DAG_INVALID
        ) from None
    except ScheduleError as exc:
        raise _fail(f"{path}: DAG {dag_id!r}: {exc}", EXIT_DAG_INVALID) from None
    except SlipstreamError as exc:
        raise _fail(str(exc), EXIT_USER_ERROR) from None
    except KeyError as exc:
        detail = exc.args[0] if exc.args else dag_id
        raise _fail(f"{path}: no DAG {detail!r}", EXIT_USER_ERROR) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise _fail(
            f"cannot read DAG file {path}: {exc.strerror or exc}", EXIT_USER_ERROR
        ) from None


# --------------------------------------------------------------------------- commands


PathArg = Annotated[str, typer.Argument(help="DAG file (or folder of DAG files).")]
DagIdArg = Annotated[str, typer.Argument(help="Id of the DAG in that file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")]
QueuedOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--queued",
        help="For a DAG scheduled on assets: an asset URI with an event queued (repeatable).",
    ),
]


def _show_asset_wait(spec: DagSpec, queued: list[str], *, as_json: bool) -> None:
    """What an asset-scheduled DAG waits for, instead of time-based runs."""
    try:
        keys = normalized(queued)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USER_ERROR) from None
    if as_json:
        typer.echo(json.dumps([asset_wait(spec, keys)], indent=2))
    else:
        typer.echo(asset_wait_text(spec, keys))


@dags_app.command("next-runs")
def next_runs_command(
    path: PathArg,
    dag_id: DagIdArg,
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            help="ISO date/time; runs that may start later than this (default: now). "
            "Without an offset it is the DAG's timezone.",
        ),
    ] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="How many runs.")] = DEFAULT_COUNT,
    as_json: JsonOpt = False,
    queued: QueuedOpt = None,
) -> None:
    """Show the next scheduled runs of a DAG (catchup ignored)."""
    spec = _load_or_exit(path, dag_id)
    if is_asset_scheduled(spec):
        _show_asset_wait(spec, queued or [], as_json=as_json)
        return
    try:
        after_at = (
            parse_when(after, option="--after", timezone=spec.timezone)
            if after is not None
            else dt.datetime.now(dt.timezone.utc)
        )
        runs = plan_next_runs(spec, after=after_at, count=count)
    except CliUsageError as exc:
        raise _fail(str(exc), EXIT_USER_ERROR) from None
    except ScheduleError as exc:
        raise _fail(f"{path}: DAG {dag_id!r}: {exc}", EXIT_DAG_INVALID) from None
    tz = resolve_timezone(spec.timezone)
    title = f"Next runs of {spec.dag_id} after {_both(after_at, tz)}"
    _show_runs(spec, runs, title, lambda: _why_no_next_run(spec), as_json=as_json)


def _why_no_next_run(spec: DagSpec) -> str:
    timetable = dag_timetable(spec)
    if isinstance(timetable, NullTimetable):
        return "schedule=None: this DAG runs only when triggered."
    if spec.start_date is None:
        return "The DAG has no start_date."
    if spec.end_date is not None:
        return "The DAG's end_date comes first."
    return "The schedule produces no further run."


@dags_app.command("due")
def due_command(
    path: PathArg,
    dag_id: DagIdArg,
    now: Annotated[
        str,
        typer.Option(
            "--now",
            help="ISO date/time the scheduler looks at. Without an offset it is the DAG's "
            "timezone.",
        ),
    ],
    last_logical_date: Annotated[
        str | None,
        typer.Option(
            "--last-logical-date",
            help="Logical date of the last scheduled run, if any (ISO).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    queued: QueuedOpt = None,
) -> None:
    """Show the runs the scheduler would create at --now (catchup honoured)."""
    spec = _load_or_exit(path, dag_id)
    if is_asset_scheduled(spec):
        _show_asset_wait(spec, queued or [], as_json=as_json)
        return
    try:
        now_at = parse_when(now, option="--now", timezone=spec.timezone)
        last_at = (
            parse_when(last_logical_date, option="--last-logical-date", timezone=spec.timezone)
            if last_logical_date is not None
            else None
        )
        runs = plan_due_runs(spec, now=now_at, last_logical_date=last_at)
        reason = "" if runs else explain_nothing_due(spec, now=now_at, last_logical_date=last_at)
    except CliUsageError as exc:
        raise _fail(str(exc), EXIT_USER_ERROR) from None
    except ScheduleError as exc:
        raise _fail(f"{path}: DAG {dag_id!r}: {exc}", EXIT_DAG_INVALID) from None
    tz = resolve_timezone(spec.timezone)
    title = f"Runs of {spec.dag_id} due at {_both(now_at, tz)} (catchup={spec.catchup})"
    _show_runs(spec, runs, title, lambda: reason, as_json=as_json)


def _show_runs(
    spec: DagSpec,
    runs: list[DagRunInfo],
    title: str,
    why_none: Callable[[], str],
    *,
    as_json: bool,
) -> None:
    """JSON records, a table, or the reason there is nothing to show."""
    if as_json:
        typer.echo(json.dumps(run_records(spec, runs), indent=2))
    elif not runs:
        typer.echo(f"{title}: none. {why_none()}")
    else:
        _print_table(spec, runs, title)
