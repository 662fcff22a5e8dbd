"""``slipstream dags validate PATH...``: every problem of every DAG file, at once.

Imports the files, builds and checks each DAG's spec, writes nothing. Exit
code 1 when any problem was found, so CI can gate deploys on it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chalicelib.cli.main import ImportTimeout, dags_app
from chalicelib.core.errors import DagValidationError
from chalicelib.sdk.loader import LoadResult, load_dags

EXIT_INVALID = 1


@dags_app.command("validate")
def validate_command(
    paths: Annotated[list[str], typer.Argument(help="DAG files or folders to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    import_timeout: ImportTimeout = None,
) -> None:
    """Check DAG files: import errors, duplicate ids, cycles, schedules, mapping, executors...

    Exit code 0 when every DAG is valid, 1 when anything is wrong.
    """
    result = load_dags(paths, import_timeout=import_timeout)
    hashes = _content_hashes(result)
    if as_json:
        typer.echo(json.dumps(_as_json(result, hashes), indent=2, sort_keys=True))
    else:
        _print(result, hashes)
    if result.problems:
        raise typer.Exit(EXIT_INVALID)


def _content_hashes(result: LoadResult) -> dict[str, str]:
    """Hashes of the DAGs without problems (an invalid DAG has no version to name)."""
    broken = {p.dag_id for p in result.problems}
    hashes: dict[str, str] = {}
    for dag_id, dag in result.dags.items():
        if dag_id in broken:
            continue
        try:
            hashes[dag_id] = dag.to_spec(validate=False).content_hash
        except DagValidationError:  # pragma: no cover - validate=False does not raise
            continue
    return hashes


def _as_json(result: LoadResult, hashes: dict[str, str]) -> dict[str, Any]:
    return {
        "valid": not result.problems,
        "files": len(result.files),
        "dags": [
            {
                "dag_id": dag_id,
                "file": result.dag_files[dag_id],
                "tasks": len(dag.task_dict),
                "valid": dag_id in hashes,
                "content_hash": hashes.get(dag_id),
            }
            for dag_id, dag in sorted(result.dags.items())
        ],
        "problems": [p.to_json() for p in result.problems],
    }


def _print(result: LoadResult, hashes: dict[str, str]) -> None:
    out = Console(highlight=False)
    if result.dags:
        table = Table(title="DAGs", title_justify="left")
        table.add_column("DAG id")
        table.add_column("tasks", justify="right")
        table.add_column("content hash")
        for dag_id, dag in sorted(result.dags.items()):
            digest = hashes.get(dag_id)
            table.add_row(
                dag_id,
                str(len(dag.task_dict)),
                digest or "[red]invalid[/red]",
            )
        out.print(table)
    for problem in result.problems:
        out.print(f"[red]{escape(str(problem))}[/red]", soft_wrap=True)
    files = f"{len(result.files)} file{'s' if len(result.files) != 1 else ''}"
    dags = f"{len(result.dags)} DAG{'s' if len(result.dags) != 1 else ''}"
    if result.problems:
        count = len(result.problems)
        noun = "problem" if count == 1 else "problems"
        out.print(f"[bold red]{count} {noun}[/bold red] in {files} ({dags})")
    else:
        out.print(f"[bold green]OK[/bold green]: {dags} in {files}, all valid")
