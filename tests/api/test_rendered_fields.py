"""``rendered_fields`` in the task-instance answers: a try records its template
fields as rendered (secrets masked, as in its log), the API answers them as
Airflow 3 does, a try that never rendered has none, and a retry's render
replaces the one before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.served import Served, deploy_dags, serve

DAGS = """
import datetime as dt

from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("render_me", schedule=None, start_date=dt.datetime(2024, 1, 1), params={"who": "world"}):
    say = BashOperator(
        task_id="say",
        bash_command="echo {{ params.who }} {{ run_id }} {{ var.value.api_password }} ",
        env={
            "API_TOKEN": "{{ var.value.plain }}",
            "GREETING": "hi {{ params.who }} {{ var.value.plain }} try {{ ti.try_number }}",
        },
    )
    say >> BashOperator(task_id="never", bash_command="exit 1 ", trigger_rule="all_failed")
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("api")) as running:
        deploy_dags(running, tmp_path_factory.mktemp("render"), "render_me.py", DAGS)
        for key, value in (("api_password", "s3cret-value-42"), ("plain", "plain-value")):
            made = running.call("POST", "/variables", json={"key": key, "value": value})
            assert made.status_code == 201, made.text
        yield running


def _run(served: Served, conf: dict[str, Any] | None = None) -> str:
    run = served.stack.trigger("render_me", conf=conf)
    served.stack.wait_for_run("render_me", run.run_id)
    return run.run_id


def test_a_try_records_its_rendered_fields_with_secrets_masked(served: Served) -> None:
    run_id = _run(served, {"who": "ada"})
    path = f"/dags/render_me/dagRuns/{quote(run_id, safe='')}/taskInstances"
    one = served.call("GET", f"{path}/say", role="viewer").json()
    assert one["state"] == "success"
    assert one["rendered_fields"] == {
        "bash_command": f"echo ada {run_id} *** ",
        "env": {"API_TOKEN": "***", "GREETING": "hi ada plain-value try 1"},
        "cwd": None,
    }
    listed = served.call("GET", path, role="viewer").json()["task_instances"]
    by_id = {ti["task_id"]: ti for ti in listed}
    assert by_id["say"]["rendered_fields"] == one["rendered_fields"]
    # "never" was skipped by its trigger rule: no try, nothing rendered.
    assert by_id["never"]["state"] == "skipped" and by_id["never"]["rendered_fields"] == {}
    assert "s3cret-value-42" not in served.call("GET", path, role="viewer").text


def _finished_try(served: Served, path: str, try_number: int) -> bool | None:
    answer = served.call("GET", path).json()
    return True if (answer["try_number"], answer["state"]) == (try_number, "success") else None


def test_a_cleared_task_shows_its_new_tries_render(served: Served) -> None:
    run_id = _run(served, {"who": "first"})
    path = f"/dags/render_me/dagRuns/{quote(run_id, safe='')}/taskInstances/say"
    first = served.call("GET", path).json()["rendered_fields"]
    assert first["env"]["GREETING"] == "hi first plain-value try 1"
    cleared = served.call(
        "POST",
        "/dags/render_me/clearTaskInstances",
        json={"dry_run": False, "task_ids": ["say"], "dag_run_id": run_id, "only_failed": False},
    )
    assert cleared.status_code == 200, cleared.text
    served.stack.wait_until(
        lambda: _finished_try(served, path, 2),
        60,
        "the cleared try to finish",
    )
    rendered = served.call("GET", path).json()["rendered_fields"]
    assert rendered["env"] == {"API_TOKEN": "***", "GREETING": "hi first plain-value try 2"}
    assert rendered["bash_command"] == f"echo first {run_id} *** "
