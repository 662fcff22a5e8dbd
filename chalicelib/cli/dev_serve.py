"""``slipstream dev`` with no subcommand: the whole system on this machine.

Everything a deployment has, in one process tree: moto in place of AWS, the
scheduler's queue poller and tick, warm worker processes, and the API Lambda's
Chalice app on a local port. An admin key for tenant ``default`` is made at
start so the remote commands (``slipstream dags list``...) and Airflow clients
work against it at once; it lives only as long as the embedded moto does, or
with ``--state-dir`` as long as that folder (as does everything else).
"""

from __future__ import annotations

import datetime as dt
import errno
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import typer

EXIT_FAILED = 1  # the state could not be saved
EXIT_BAD_INPUT = 2  # a port in use, no dags/ folder, a state dir that cannot be loaded
LOCAL_TENANT = "default"


def port_free(host: str, port: int) -> bool:
    """Whether the API could listen on host:port; checked before the stack starts,
    because starting moto and the workers only to fail on the port wastes seconds."""
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The HTTP server sets SO_REUSEADDR too: a port in TIME_WAIT is usable.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _state_line(stack: Any) -> str:
    restored = stack.restored
    if restored is None:
        return "fresh"
    return (
        f"restored {restored['items']} items, {restored['objects']} objects, "
        f"{restored['secrets'] + restored['parameters']} connections and variables, "
        f"{restored['log_events']} log lines"
    )


def _say(line: str) -> None:
    # Flushed at once: scripts and tests wait for these lines on a pipe.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def state_dir_failed(exc: Exception, *, started: bool) -> NoReturn:
    """One line: a state dir refused at start is bad input (2), a failed save is 1."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(EXIT_FAILED if started else EXIT_BAD_INPUT)


def run_dev(
    project: Path,
    host: str,
    port: int,
    workers: int,
    tick_seconds: float,
    state_dir: Path | None = None,
) -> None:
    """Start everything, print where the API is and its key, serve until SIGINT/SIGTERM.

    With ``state_dir`` the stack restores what it saved there and saves on stop."""
    from chalicelib.api import deps
    from chalicelib.local.api_server import ApiServer
    from chalicelib.local.event_sources import event_bus_name, trigger_hints
    from chalicelib.local.snapshot import SnapshotError
    from chalicelib.local.stack import LocalStack

    if not port_free(host, port):
        typer.echo(f"error: {host}:{port} is in use; pick another with --port", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if not (project / "dags").is_dir():
        typer.echo(f"error: no dags/ folder in {project}; pass --project", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)

    stopped = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    server: Any = None
    started = False
    try:
        with LocalStack(workers=workers, tick_seconds=tick_seconds, state_dir=state_dir) as stack:
            started = True
            report = stack.deploy(project)
            for problem in report.problems:
                typer.echo(f"problem: {problem}", err=True)
            try:
                server = ApiServer(host=host, port=port).start()
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                typer.echo(f"error: cannot listen on {host}:{port}: {reason}", err=True)
                raise typer.Exit(EXIT_BAD_INPUT) from None
            _, key = deps.api_keys().create(
                tenant=LOCAL_TENANT,
                role="admin",
                name="slipstream-dev",
                now=dt.datetime.now(dt.UTC),
            )
            code = deps.signin_codes().create(
                tenant=LOCAL_TENANT, role="admin", now=dt.datetime.now(dt.UTC)
            )
            api = f"{server.url}/api/v2"
            dags = ", ".join(d.dag_id for d in report.dags) or "none"
            _say(f"Local stack on moto at {stack.endpoint}, {workers} warm workers")
            if state_dir is not None:
                _say(f"State: {_state_line(stack)}; saved to {state_dir} at stop")
            _say(f"DAGs (unpaused): {dags}")
            _say(f"API: {api}")
            _say(f"API key: {key}")
            # The code rides in the fragment: browsers never send it to a server.
            _say(f"UI: {server.url}/ui/#signin={code}  (one-time link, valid 10 minutes)")
            _say("Use it from another shell:")
            _say(f"  export SLIPSTREAM_API_URL={server.url} SLIPSTREAM_API_KEY={key}")
            _say("  slipstream dags list")
            _say(f"  curl -H 'Authorization: Bearer {key}' {api}/dags")
            for line in trigger_hints(
                stack.endpoint or "", stack.watch_buckets(), event_bus_name()
            ):
                _say(line)
            _say("Ctrl-C stops it.")
            while not stopped.wait(1.0):
                pass
            _say("stopping")
    except SnapshotError as exc:
        state_dir_failed(exc, started=started)
    finally:
        if server is not None:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("stopped")
