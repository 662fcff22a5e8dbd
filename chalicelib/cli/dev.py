"""``slipstream dev``: the serverless stack on this machine, on moto."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from chalicelib.cli.main import app
from chalicelib.cli.remote import EXIT_FAILED, bad_input, fail
from chalicelib.core.errors import SlipstreamError

STATE_DIR_OPTION = typer.Option(
    help="Keep the state between restarts: restore it from this folder at start, "
    "save it there at stop (default: a fresh stack every time).",
    file_okay=False,
)

dev_app = typer.Typer(
    help="Run the serverless stack locally on moto: with no command, the whole system "
    "(scheduler, workers, API) until Ctrl-C.",
    invoke_without_command=True,
)
app.add_typer(dev_app, name="dev")


@dev_app.callback()
def dev_callback(
    ctx: typer.Context,
    project: Annotated[Path, typer.Option(help="Project folder holding dags/.")] = Path("."),
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on (0: any free).")] = 8080,
    workers: Annotated[int, typer.Option(help="Warm worker processes.")] = 2,
    tick_seconds: Annotated[float, typer.Option(help="Seconds between scheduler ticks.")] = 5.0,
    state_dir: Annotated[Path | None, STATE_DIR_OPTION] = None,
) -> None:
    """Without a command: serve the API and run the scheduler and workers on moto.

    Prints the API's URL and an admin key for tenant 'default'; exit 0 on
    Ctrl-C or SIGTERM, 2 when the port is in use or the state dir cannot be loaded.
    """
    if ctx.invoked_subcommand is not None:
        return
    from chalicelib.cli.dev_serve import run_dev

    run_dev(project, host, port, workers, tick_seconds, state_dir)


@dev_app.command("demo")
def demo_command(
    dag_id: Annotated[str, typer.Argument(help="Example DAG to trigger.")] = "etl_hourly",
    project: Annotated[Path, typer.Option(help="Project folder holding dags/.")] = Path("."),
    conf: Annotated[str | None, typer.Option(help="Run conf as a JSON object.")] = None,
    workers: Annotated[int, typer.Option(help="Warm worker processes.")] = 2,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 300.0,
) -> None:
    """Start the stack, deploy the project's DAGs (paused), run DAG_ID once, print its tasks, stop.

    Only DAG_ID runs: the other DAGs stay paused, so none starts its scheduled
    or catch-up runs. Exit code 0 when the run succeeded, 1 when it failed,
    2 for bad input (an unknown DAG, a conf its params refuse).
    """
    from chalicelib.local.stack import LocalStack

    console = Console()
    run_conf = _conf(conf)
    if not (project / "dags").is_dir():
        bad_input(f"no dags/ folder in {project}; pass --project with the folder that holds it")
    try:
        with LocalStack(workers=workers) as stack:
            console.print(
                f"[bold]Local stack[/bold] on moto at {stack.endpoint}, {workers} warm workers"
            )
            final = run_demo(stack, project, dag_id, run_conf, timeout, console)
    except SlipstreamError as exc:
        bad_input(str(exc))
    except TimeoutError as exc:
        fail("", str(exc), EXIT_FAILED)
    raise typer.Exit(0 if final.state.value == "success" else EXIT_FAILED)


def run_demo(
    stack: Any, project: Path, dag_id: str, conf: dict[str, Any], timeout: float, console: Console
) -> Any:
    """Deploy paused, trigger ``dag_id`` once, wait for it and print its tasks; the
    finished run. A broken project, an unknown DAG or a refused conf raise
    SlipstreamError before anything runs."""
    from chalicelib import wiring
    from chalicelib.local.display import instances_table

    report = stack.deploy(project, unpause=False)
    if not report.ok:
        raise SlipstreamError("; ".join(str(p) for p in report.problems))
    deployed = sorted(d.dag_id for d in report.dags)
    if dag_id not in deployed:
        raise SlipstreamError(
            f"no DAG {dag_id!r} in {project / 'dags'}; found: {', '.join(deployed) or 'none'}"
        )
    console.print(
        "Deployed "
        + ", ".join(f"{d.dag_id} ({d.status}, {d.tasks} tasks)" for d in report.dags)
        + f"; bundle {report.bundle_key}"
    )
    run = stack.trigger(dag_id, conf)
    console.print(f"Triggered {dag_id}: {run.run_id} (version {run.version[:12]})")
    final = stack.wait_for_run(dag_id, run.run_id, timeout=timeout)
    store = wiring.state_store()
    spec = wiring.scheduler().specs.get(dag_id, final.version)
    instances = _instances(store, spec, final)
    console.print(instances_table(f"DAG {dag_id} — run {final.run_id}", spec, instances))
    took = (final.end_date - final.start_date).total_seconds() if final.end_date else 0.0
    style = "bold green" if final.state.value == "success" else "bold red"
    console.print(f"Run [{style}]{final.state.value}[/{style}] in {took:.2f}s")
    return final


@dev_app.command("up")
def up_command(
    project: Annotated[Path, typer.Option(help="Project folder holding dags/.")] = Path("."),
    workers: Annotated[int, typer.Option(help="Warm worker processes.")] = 2,
    tick_seconds: Annotated[float, typer.Option(help="Seconds between scheduler ticks.")] = 5.0,
    state_dir: Annotated[Path | None, STATE_DIR_OPTION] = None,
) -> None:
    """Start the stack, deploy the project's DAGs (unpaused) and run until Ctrl-C."""
    from chalicelib.cli.dev_serve import state_dir_failed
    from chalicelib.local.event_sources import event_bus_name, trigger_hints
    from chalicelib.local.snapshot import SnapshotError
    from chalicelib.local.stack import LocalStack

    console = Console()
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    started = False
    try:
        with LocalStack(workers=workers, tick_seconds=tick_seconds, state_dir=state_dir) as stack:
            started = True
            report = stack.deploy(project)
            for problem in report.problems:
                console.print(f"[red]{problem}[/red]", soft_wrap=True)
            console.print(
                f"Local stack on moto at {stack.endpoint}; DAGs: "
                + ", ".join(d.dag_id for d in report.dags)
            )
            console.print(f"export SLIPSTREAM_ENDPOINT_URL={stack.endpoint}  # to use it from here")
            for line in trigger_hints(
                stack.endpoint or "", stack.watch_buckets(), event_bus_name()
            ):
                console.print(line, soft_wrap=True, markup=False, highlight=False)
            stopped.wait()
    except SnapshotError as exc:
        state_dir_failed(exc, started=started)
    console.print("stopped")


def _instances(store: Any, spec: Any, run: Any) -> list[Any]:
    view = store.run_view(run.dag_id, run.run_id, spec)
    found: list[Any] = []
    for tid, summary in view.summaries(list(spec.tasks)).items():
        if summary.mapped_count is None:
            found.append(summary.instance)
            continue
        for index in range(summary.mapped_count):
            ti = view.instance(tid, index)
            if ti is not None:
                found.append(ti)
    return found


def _conf(conf: str | None) -> dict[str, Any]:
    if conf is None:
        return {}
    try:
        value = json.loads(conf)
    except json.JSONDecodeError as exc:
        bad_input(f"--conf is not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(value, dict):
        bad_input(f"--conf must be a JSON object, got {type(value).__name__}")
    return value
