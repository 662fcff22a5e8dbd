"""Setup and teardown tasks on the local serverless stack: moto, the queue poller,
warm workers, and the REST API's clear (what `slipstream tasks clear` calls)."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.cli.main import _register_commands, app
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.local.api_server import ApiServer
from chalicelib.local.stack import LocalStack

_register_commands()
DAG_ID = "setup_teardown_e2e"
SETUP_TEARDOWN_DAG = f"""
from chalicelib.sdk import DAG, setup, task, teardown

with DAG("{DAG_ID}", schedule=None):

    @setup
    def create() -> str:
        return "res-1"

    @task
    def work(name: str) -> str:
        return name.upper()

    @teardown
    def delete(name: str) -> None:
        raise RuntimeError("cannot delete " + name)

    @task
    def outside(value: str) -> str:
        return value

    made = create()
    done = work(made)
    done >> delete(made)
    outside(done)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, str, str]]:
    project = tmp_path_factory.mktemp("setup_teardown_project")
    (project / "dags").mkdir()
    (project / "dags" / f"{DAG_ID}.py").write_text(textwrap.dedent(SETUP_TEARDOWN_DAG))
    with LocalStack(workers=2, tick_seconds=3600) as running:
        report = running.deploy(Path(project))
        assert report.ok, report.problems
        _, key = deps.api_keys().create(
            tenant="default", role="user", now=dt.datetime.now(dt.UTC), name="clearer"
        )
        server = ApiServer(port=0).start()
        try:
            yield running, server.url, key
        finally:
            server.stop()


def _states(run_id: str) -> dict[str, tuple[TaskState, int]]:
    store = wiring.state_store()
    result = {}
    for task_id in ("create", "work", "delete", "outside"):
        ti = store.get_instance(DAG_ID, run_id, task_id, -1)
        assert ti is not None, task_id
        result[task_id] = (ti.state, ti.try_number)
    return result


def test_a_failing_teardown_leaves_the_run_successful_and_a_clear_takes_the_scope(
    stack: tuple[LocalStack, str, str],
) -> None:
    running, url, key = stack
    run = running.trigger(DAG_ID)
    done = running.wait_for_run(DAG_ID, run.run_id, timeout=120)

    assert done.state is DagRunState.SUCCESS  # the only failure is the teardown's
    assert _states(run.run_id) == {
        "create": (TaskState.SUCCESS, 1),
        "work": (TaskState.SUCCESS, 1),
        "delete": (TaskState.FAILED, 1),
        "outside": (TaskState.SUCCESS, 1),
    }

    # Clearing the work task clears its setup and teardown too, and nothing else:
    # first a dry run over the REST API (Airflow's only_failed defaults to true,
    # so ask for every state), then `slipstream tasks clear` against the same API.
    answer = requests.post(
        f"{url}/api/v2/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": run.run_id, "task_ids": ["work"], "only_failed": False},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    previewed = {ti["task_id"] for ti in answer.json()["task_instances"]}
    assert previewed == {"create", "work", "delete"}
    assert _states(run.run_id)["work"] == (TaskState.SUCCESS, 1)  # a dry run changes nothing

    cli = ["tasks", "clear", DAG_ID, run.run_id, "work", "--api-url", url, "--api-key", key]
    result = CliRunner().invoke(app, cli)
    assert result.exit_code == 0, result.output
    assert "cleared 3 task instances" in result.output

    def rerun_finished() -> bool | None:
        states = _states(run.run_id)
        again = wiring.state_store().get_run(DAG_ID, run.run_id)
        finished = again is not None and again.state.finished and states["delete"][1] == 2
        return True if finished else None

    running.wait_until(rerun_finished, 120, "the cleared scope to run again")
    assert _states(run.run_id) == {
        "create": (TaskState.SUCCESS, 2),
        "work": (TaskState.SUCCESS, 2),
        "delete": (TaskState.FAILED, 2),
        "outside": (TaskState.SUCCESS, 1),  # below the work task but out of the scope
    }
    again = wiring.state_store().get_run(DAG_ID, run.run_id)
    assert again is not None and again.state is DagRunState.SUCCESS
