"""``slipstream hitl``: the human-in-the-loop requests waiting for an answer,
and answering one, over the API (``SLIPSTREAM_API_URL`` or ``--api-url``).

The answer goes through the same ``PATCH .../hitlDetails`` as the UI and
apache-airflow-client, so the same checks apply and a second answer is refused.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_rows
from chalicelib.cli.remote import ApiKey, ApiUrl, AsJson, Client, parse_json_object, quote

hitl_app = typer.Typer(
    help="Human-in-the-loop requests: list them and answer them.", no_args_is_help=True
)
app.add_typer(hitl_app, name="hitl")


@hitl_app.command("list")
def list_command(
    dag_id: Annotated[str, typer.Option("--dag", help="Only this DAG's requests.")] = "~",
    run_id: Annotated[str, typer.Option("--run", help="Only this run's (needs --dag).")] = "~",
    show_all: Annotated[
        bool, typer.Option("--all", help="Answered ones too (default: pending only).")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Requests waiting for an answer, oldest first."""
    client = Client.from_options(api_url, api_key)
    answer = client.get(
        f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/hitlDetails",
        limit=1000,
        response_received=None if show_all else "false",
    )
    rows = []
    for detail in answer["hitl_details"]:
        ti = detail["task_instance"]
        index = "" if ti["map_index"] < 0 else f"[{ti['map_index']}]"
        rows.append(
            {
                "dag": ti["dag_id"],
                "run": ti["dag_run_id"],
                "task": ti["task_id"] + index,
                "subject": detail["subject"],
                "options": ", ".join(detail["options"]),
                "answer": ", ".join(detail["chosen_options"] or []) or "-",
            }
        )
    emit_rows(
        answer,
        as_json,
        "Human-in-the-loop requests",
        rows,
        ["dag", "run", "task", "subject", "options", "answer"],
    )


@hitl_app.command("respond")
def respond_command(
    dag_id: Annotated[str, typer.Argument(help="DAG id.")],
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    task_id: Annotated[str, typer.Argument(help="Task id of the waiting task.")],
    option: Annotated[
        list[str], typer.Option("--option", "-o", help="A chosen option (repeat for several).")
    ],
    params: Annotated[
        str | None, typer.Option("--params", help="params_input as a JSON object.")
    ] = None,
    map_index: Annotated[int, typer.Option("--map-index", help="Mapped instance.")] = -1,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Answer a waiting task; it resumes at once."""
    body: dict[str, Any] = {"chosen_options": list(option)}
    given = parse_json_object(params, "--params")
    if given is not None:
        body["params_input"] = given
    client = Client.from_options(api_url, api_key)
    path = (
        f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/"
        f"{quote(task_id)}/{map_index}/hitlDetails"
    )
    answer = client.patch(path, body)
    if as_json:
        from chalicelib.cli.output import print_json

        print_json(answer)
        return
    who = (answer.get("responded_by") or {}).get("name", "")
    typer.echo(f"{dag_id} {run_id} {task_id}: {', '.join(answer['chosen_options'])} ({who})")
