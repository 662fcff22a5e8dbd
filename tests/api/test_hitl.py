"""Human-in-the-loop through the REST API on the local serverless stack: the
task waits ``up_for_reschedule`` with no worker busy, is listed as pending,
is answered through apache-airflow-client (which wakes it at once), and bad,
forbidden, repeated and concurrent answers are refused without changing state;
an unanswered request times out into its defaults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_client.client import TaskInstanceApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import UpdateHITLDetailPayload

from chalicelib import wiring
from chalicelib.core.states import DagRunState, TaskState
from tests.api.served import ROOT, Served, serve

DAGS = """
import datetime as dt

from airflow.sdk import DAG, task
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator

with DAG("approve", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    ask = ApprovalOperator(
        task_id="ask", subject="Deploy {{ dag_run.conf.get('what', 'it') }}?",
        params={"note": "none"},
    )

    @task
    def deploy(ti=None):
        return ti.xcom_pull(task_ids="ask")

    ask >> deploy()

with DAG("pick", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    HITLOperator(task_id="ask", subject="Which?", options=["a", "b", "c"], multiple=True)

with DAG("lapse", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    HITLOperator(
        task_id="ask", subject="Quick?", options=["yes", "no"], defaults="no",
        execution_timeout=dt.timedelta(seconds=2),
    )
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("api")) as running:
        project = tmp_path_factory.mktemp("hitl")
        (project / "dags").mkdir()
        (project / "dags" / "hitl.py").write_text(DAGS)
        (project / "operators").symlink_to(Path(ROOT) / "operators")
        report = running.stack.deploy(project)
        assert report.ok, report.problems
        yield running


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Any]:
    with served.airflow_client(role="user") as api_client:
        yield api_client


def _waiting(served: Served, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    """Trigger a run and return its id once ``ask`` waits for a person."""
    run = served.stack.trigger(dag_id, conf=conf)

    def parked() -> bool | None:
        ti = wiring.state_store().get_instance(dag_id, run.run_id, "ask", -1)
        return True if ti is not None and ti.state is TaskState.UP_FOR_RESCHEDULE else None

    served.stack.wait_until(parked, 60, f"{dag_id}.ask to wait")
    return run.run_id


def _path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/ask/-1/hitlDetails"


def test_approval_waits_without_a_worker_and_resumes_on_the_answer(
    served: Served, client: Any
) -> None:
    run_id = _waiting(served, "approve", {"what": "v2"})
    executor = served.stack.executor
    assert executor is not None and executor.wait_idle(30)  # nothing runs while it waits
    api = TaskInstanceApi(client)
    pending = api.get_hitl_details("approve", run_id)
    assert pending.total_entries == 1
    detail = pending.hitl_details[0]
    assert detail.subject == "Deploy v2?" and detail.options == ["Approve", "Reject"]
    assert detail.response_received is False and detail.task_instance.state == "up_for_reschedule"
    assert detail.params["note"]["value"] == "none"
    listed = api.get_hitl_details("~", "~", response_received=False)
    assert run_id in {d.task_instance.dag_run_id for d in listed.hitl_details}

    answer = api.update_hitl_detail(
        "approve",
        run_id,
        "ask",
        -1,
        UpdateHITLDetailPayload(chosen_options=["Approve"], params_input={"note": "ship"}),
    )
    assert answer.chosen_options == ["Approve"] and answer.responded_by.name == "default-user"
    run = served.stack.wait_for_run("approve", run_id, timeout=60)
    assert run.state is DagRunState.SUCCESS
    got = api.get_hitl_detail("approve", run_id, "ask", -1)
    assert got.response_received and got.params_input == {"note": "ship"}
    xcom = served.call(
        "GET", f"/dags/approve/dagRuns/{run_id}/taskInstances/deploy/xcomEntries/return_value"
    )
    value = xcom.json()["value"]
    assert value["chosen_options"] == ["Approve"]
    assert value["responded_by_user"]["name"] == "default-user"

    with pytest.raises(ApiException) as again:  # a second answer is refused
        api.update_hitl_detail(
            "approve", run_id, "ask", -1, UpdateHITLDetailPayload(chosen_options=["Reject"])
        )
    assert again.value.status == 409


def test_bad_and_forbidden_answers_change_nothing(served: Served) -> None:
    run_id = _waiting(served, "pick")
    path = _path("pick", run_id)
    cases = [
        ("viewer", {"chosen_options": ["a"]}, 403, "role"),
        ("user", {"chosen_options": ["z"]}, 400, "'z' not in the options"),
        ("user", {"chosen_options": []}, 422, "chosen_options"),
        ("user", {"chosen_options": ["a"], "params_input": {"x": 1}}, 400, "'x' not among"),
        ("user", {"chosen_options": ["a"], "extra": 1}, 422, "extra"),
        ("user", {"chosen_options": ["a", "a"]}, 400, "chosen twice"),
    ]
    for role, body, status, said in cases:
        answer = served.call("PATCH", path, role=role, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert said in answer.text, answer.text
    assert served.call("GET", path, role="viewer").json()["response_received"] is False
    other = served.call("GET", path, role="user", tenant="acme")
    assert other.status_code == 404
    missing = served.call(
        "PATCH", _path("pick", "nope"), role="user", json={"chosen_options": ["a"]}
    )
    assert missing.status_code == 404
    several = served.call("PATCH", path, role="user", json={"chosen_options": ["a", "c"]})
    assert several.status_code == 200, several.text
    assert served.stack.wait_for_run("pick", run_id, timeout=60).state is DagRunState.SUCCESS


def test_concurrent_answers_exactly_one_wins(served: Served) -> None:
    run_id = _waiting(served, "pick")
    path = _path("pick", run_id)
    statuses: list[int] = []
    start = threading.Barrier(6)

    def answer(option: str) -> None:
        start.wait()
        reply = served.call("PATCH", path, role="user", json={"chosen_options": [option]})
        statuses.append(reply.status_code)

    threads = [threading.Thread(target=answer, args=("abcabc"[i],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    assert served.stack.wait_for_run("pick", run_id, timeout=60).state is DagRunState.SUCCESS
    stored = served.call("GET", path, role="viewer").json()
    assert len(stored["chosen_options"]) == 1


def test_an_unanswered_request_times_out_into_its_defaults(served: Served) -> None:
    run = served.stack.trigger("lapse")
    assert served.stack.wait_for_run("lapse", run.run_id, timeout=60).state is DagRunState.SUCCESS
    detail = served.call("GET", _path("lapse", run.run_id), role="viewer").json()
    assert detail["chosen_options"] == ["no"] and detail["responded_by_user"] is None
    late = served.call(
        "PATCH", _path("lapse", run.run_id), role="user", json={"chosen_options": ["yes"]}
    )
    assert late.status_code == 409


def test_cli_lists_pending_requests_and_answers_one(served: Served) -> None:
    import json

    from typer.testing import CliRunner

    from chalicelib.cli.main import _register_commands, app

    _register_commands()
    run_id = _waiting(served, "pick")
    env = {"SLIPSTREAM_API_URL": served.url, "SLIPSTREAM_API_KEY": served.keys[("default", "user")]}
    cli = CliRunner()
    listed = cli.invoke(app, ["hitl", "list", "--dag", "pick", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    pending = json.loads(listed.stdout)["hitl_details"]
    assert [d["task_instance"]["dag_run_id"] for d in pending] == [run_id]
    answered = cli.invoke(
        app, ["hitl", "respond", "pick", run_id, "ask", "-o", "b", "-o", "c"], env=env
    )
    assert answered.exit_code == 0, answered.output
    assert "b, c (default-user)" in answered.stdout
    again = cli.invoke(app, ["hitl", "respond", "pick", run_id, "ask", "-o", "a"], env=env)
    assert again.exit_code == 2 and again.stderr.startswith("error: 409")
    assert served.stack.wait_for_run("pick", run_id, timeout=60).state is DagRunState.SUCCESS
    listed = cli.invoke(app, ["hitl", "list", "--dag", "pick", "--run", run_id, "--json"], env=env)
    assert json.loads(listed.stdout)["total_entries"] == 0


def test_airflow_3_1_0_paths_serve_the_same_requests(served: Served) -> None:
    run_id = _waiting(served, "pick")
    listed = served.call("GET", "/hitlDetails", role="viewer", params={"dag_id": "pick"}).json()
    assert run_id in {d["task_instance"]["dag_run_id"] for d in listed["hitl_details"]}
    one = served.call("GET", f"/hitlDetails/pick/{run_id}/ask", role="viewer")
    assert one.status_code == 200 and one.json()["subject"] == "Which?"
    answered = served.call(
        "PATCH", f"/hitlDetails/pick/{run_id}/ask", role="user", json={"chosen_options": ["c"]}
    )
    assert answered.status_code == 200, answered.text
    assert served.stack.wait_for_run("pick", run_id, timeout=60).state is DagRunState.SUCCESS
    mapped = served.call("GET", f"/hitlDetails/pick/{run_id}/ask/-1", role="viewer").json()
    assert mapped["chosen_options"] == ["c"] and mapped["response_received"] is True
