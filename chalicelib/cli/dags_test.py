"""``slipstream dags test``: run one DAG run to the end, here, now."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from chalicelib.cli.main import ImportTimeout, dags_app
from chalicelib.core.errors import DagValidationError, SlipstreamError

EXIT_FAILED_RUN = 1
EXIT_USAGE = 2


def _say(err: Console, message: object) -> None:
    """One red line on stderr; rich markup in the message is shown, not interpreted."""
    err.print(Text(" ".join(str(message).split()), style="red"), highlight=False)


@contextmanager
def _exit_on_error(err: Console, *, invalid_dag_exit: int) -> Iterator[None]:
    """Errors become a line each on stderr and an exit code, never a traceback.

    A file that does not load is bad input (2) like an unknown DAG id; a DAG
    that loads but breaks a rule (a cycle) fails the run (1), every problem listed.
    """
    try:
        yield
    except DagValidationError as exc:
        for problem in exc.problems:
            _say(err, problem)
        raise typer.Exit(invalid_dag_exit) from None
    except SlipstreamError as exc:
        _say(err, exc)
        raise typer.Exit(EXIT_USAGE) from None


@dags_app.command("test")
def test_command(
    path: Annotated[str, typer.Argument(help="DAG file (or folder) that defines the DAG.")],
    dag_id: Annotated[str, typer.Argument(help="Id of the DAG to run.")],
    logical_date: Annotated[
        str | None,
        typer.Option("--logical-date", help="Logical date (ISO 8601); default: now."),
    ] = None,
    conf: Annotated[str | None, typer.Option("--conf", help="Run conf as a JSON object.")] = None,
    real_time: Annotated[
        bool, typer.Option("--real-time", help="Wait out retry delays instead of skipping them.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No live table or task logs.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    import_timeout: ImportTimeout = None,
    variables: Annotated[
        str | None,
        typer.Option("--variables", help="Variables file (Airflow's JSON, YAML or .env format)."),
    ] = None,
    connections: Annotated[
        str | None,
        typer.Option(
            "--connections", help="Connections file (Airflow's JSON, YAML or .env format)."
        ),
    ] = None,
    hitl_responses: Annotated[
        str | None,
        typer.Option(
            "--hitl-responses",
            help="JSON answers for human-in-the-loop tasks: {task_id: {chosen_options, "
            "params_input}}; a task without one takes its defaults, or fails.",
        ),
    ] = None,
) -> None:
    """Run DAG_ID from PATH once, in this process, with the real engine.

    Exit code 0 when the run succeeded, 1 when it failed, 2 for bad input.
    Variables and connections come from --variables / --connections, then
    AIRFLOW_VAR_* / AIRFLOW_CONN_* environment variables, then the store.
    """
    err = Console(stderr=True, soft_wrap=True)
    run_conf = _parse_conf(conf, err)
    from chalicelib.local.display import TableReporter
    from chalicelib.local.runner import run_dag_test
    from chalicelib.local.streams import stdout_to_stderr, task_logs_to_stderr
    from chalicelib.runtime.hitl import LocalHitl, local_hitl
    from chalicelib.sdk.loader import load_dag

    with _exit_on_error(err, invalid_dag_exit=EXIT_USAGE):
        _check_files(variables, connections)  # a bad file is bad input: before anything runs
        answers = LocalHitl.from_file(hitl_responses) if hitl_responses else LocalHitl()
    with _exit_on_error(err, invalid_dag_exit=EXIT_USAGE), stdout_to_stderr():
        dag = load_dag(
            path, dag_id, import_timeout=import_timeout
        )  # module-level prints of the DAG file stay off stdout
    reporter = None if (quiet or as_json) else TableReporter(Console())
    with ExitStack() as guards:
        guards.enter_context(_exit_on_error(err, invalid_dag_exit=EXIT_FAILED_RUN))
        guards.enter_context(local_hitl(answers))
        if as_json:
            guards.enter_context(stdout_to_stderr())
            if not quiet:
                guards.enter_context(task_logs_to_stderr())
        result = run_dag_test(
            dag,
            logical_date=logical_date,
            conf=run_conf,
            real_time=real_time,
            show=reporter is not None,
            reporter=reporter,
            variables_file=variables,
            connections_file=connections,
        )
    if as_json:  # stdout is ours again: the one JSON document goes there
        typer.echo(json.dumps(_json_result(result), indent=2))
    elif quiet:
        why = f" ({result.reason})" if result.reason else ""
        typer.echo(
            f"{result.dag_id} {result.run_id}: {result.state}{why} in {result.wall_seconds:.2f}s"
        )
    raise typer.Exit(0 if result.succeeded else EXIT_FAILED_RUN)


def _json_result(result: Any) -> dict[str, Any]:
    """``dag.test()``'s result under its own attribute names (state, task_states, tries, ...)."""
    return {
        "dag_id": result.dag_id,
        "run_id": result.run_id,
        "state": result.state,
        "reason": result.reason,
        "logical_date": result.logical_date.isoformat(),
        "wall_seconds": round(result.wall_seconds, 3),
        "task_states": result.task_states,
        "tries": result.tries,
        "errors": result.errors,
        # every try and poke in order: a rescheduled sensor shows up_for_reschedule pokes
        "history": [
            {"task": r.label, "try_number": r.try_number, "state": r.state.value}
            for r in result.history
        ],
    }


def _check_files(variables: str | None, connections: str | None) -> None:
    """Read the --variables / --connections files once so a bad one stops us early."""
    from chalicelib.secrets.local_files import load_connections, load_variables

    if variables is not None:
        load_variables(variables)
    if connections is not None:
        load_connections(connections)


def _parse_conf(conf: str | None, err: Console) -> dict[str, Any]:
    if conf is None:
        return {}
    try:
        value = json.loads(conf)
    except json.JSONDecodeError as exc:
        _say(err, f"--conf is not valid JSON: {exc.msg} at column {exc.colno}")
        raise typer.Exit(EXIT_USAGE) from None
    if not isinstance(value, dict):
        _say(err, f"--conf must be a JSON object, got {type(value).__name__}")
        raise typer.Exit(EXIT_USAGE)
    return value
