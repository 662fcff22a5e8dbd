"""Entry point of the ``slipstream`` console script.

Each command group lives in its own module and registers itself on
``dags_app`` when imported below.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="slipstream",
    help="Slipstream: Airflow-style DAGs on serverless AWS.",
    no_args_is_help=True,
    add_completion=False,
)
dags_app = typer.Typer(
    help="Author, check, test and deploy DAGs; list, trigger and pause them on an API.",
    no_args_is_help=True,
)
app.add_typer(dags_app, name="dags")

ImportTimeout = Annotated[
    float | None,
    typer.Option(
        "--import-timeout",
        help="Seconds a DAG file may take to import before it counts as broken "
        "(default: SLIPSTREAM_DAGBAG_IMPORT_TIMEOUT, AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT, "
        "or 30; 0: no limit).",
        show_default=False,
    ),
]


def main() -> None:
    _register_commands()
    app()


def _register_commands() -> None:
    # Imported for their side effect of adding commands to dags_app.
    from chalicelib.cli import (  # noqa: F401
        backfill,
        dags_remote,
        dags_test,
        deploy,
        dev,
        hitl_cli,
        keys,
        operators_cli,
        pools,
        runs,
        schedules,
        secrets_cli,
        stage,
        tasks,
        validate,
    )
