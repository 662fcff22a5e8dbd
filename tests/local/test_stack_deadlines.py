"""A deadline alert on the local serverless stack: moto, the queue poller, real workers.

The run's only task waits for a file the test writes, so the run is still going
when the tick judges its deadline (a fixed time in the past): the miss is
recorded once, the callback runs once in a worker process (not the scheduler),
and the REST API and the event log show it.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.local.api_server import ApiServer
from chalicelib.local.stack import LocalStack

DEADLINE_DAG = """
import datetime as dt
import os
import pathlib
import time

from airflow import DAG
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback
from airflow.sdk import task

MARKS = pathlib.Path(os.environ["SLIPSTREAM_DEADLINE_TEST_DIR"])


def late(**kwargs):
    run_id = kwargs["context"]["dag_run"]["dag_run_id"]
    with open(MARKS / "called", "a") as out:
        out.write(f"{run_id} {kwargs['team']} {os.getpid()}\\n")


with DAG(
    "deadline_e2e",
    schedule=None,
    deadline=DeadlineAlert(
        reference=DeadlineReference.FIXED_DATETIME(dt.datetime(2020, 1, 1)),
        interval=dt.timedelta(0),
        callback=SyncCallback(late, kwargs={"team": "data"}),
    ),
):

    @task
    def slow():
        while not (MARKS / "release").exists():
            time.sleep(0.05)

    slow()
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    project = tmp_path_factory.mktemp("deadline_project")
    marks = tmp_path_factory.mktemp("deadline_marks")
    (project / "dags").mkdir()
    (project / "dags" / "deadline_e2e.py").write_text(textwrap.dedent(DEADLINE_DAG))
    saved = os.environ.get("SLIPSTREAM_DEADLINE_TEST_DIR")
    os.environ["SLIPSTREAM_DEADLINE_TEST_DIR"] = str(marks)  # the workers inherit it
    try:
        with LocalStack(workers=2, tick_seconds=3600) as running:
            report = running.deploy(Path(project))
            assert report.ok, report.problems
            yield running, marks
    finally:
        (marks / "release").touch()
        if saved is None:
            os.environ.pop("SLIPSTREAM_DEADLINE_TEST_DIR", None)
        else:
            os.environ["SLIPSTREAM_DEADLINE_TEST_DIR"] = saved


def test_a_missed_deadline_calls_back_once_in_a_worker_and_shows(
    stack: tuple[LocalStack, Path],
) -> None:
    running, marks = stack
    store = wiring.state_store()
    run = running.trigger("deadline_e2e")
    # Registered when the queue poller handled RunCreated (the run is then running).
    running.wait_until(
        lambda: store.deadlines.for_run("deadline_e2e", run.run_id, 1) or None,
        timeout=120,
        what="the run's deadline",
    )

    scheduler = wiring.scheduler()
    assert scheduler.tick().deadlines_missed == [f"deadline_e2e/{run.run_id}/deadline[0]"]
    called = marks / "called"
    running.wait_until(lambda: called.exists() or None, timeout=120, what="the callback")
    assert scheduler.tick().deadlines_missed == []  # a second tick: judged already

    (marks / "release").touch()
    done = running.wait_for_run("deadline_e2e", run.run_id, timeout=120)
    assert done.state.value == "success"
    lines = called.read_text().splitlines()
    assert len(lines) == 1
    run_id, team, pid = lines[0].split()
    assert (run_id, team) == (run.run_id, "data")
    assert int(pid) != os.getpid()  # user code ran in a worker, not in the scheduler

    server = ApiServer(port=0).start()
    try:
        _, key = deps.api_keys().create(
            tenant="default", role="viewer", now=dt.datetime.now(dt.UTC), name="deadline-viewer"
        )
        headers = {"Authorization": f"Bearer {key}"}
        path = f"/slipstream/dags/deadline_e2e/dagRuns/{quote(run.run_id, safe='')}/deadlines"
        answer = requests.get(f"{server.url}/api/v2{path}", headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        (deadline,) = answer.json()["deadlines"]
        assert deadline["missed"] and deadline["state"] == "missed"
        assert deadline["reference"] == "FIXED_DATETIME"
        assert deadline["deadline_time"].startswith("2020-01-01T00:00:00")
        assert deadline["callback"].endswith("late")
        dags = requests.get(f"{server.url}/api/v2/dags", headers=headers, timeout=30).json()
        assert [d["dag_id"] for d in dags["dags"]] == ["deadline_e2e"]  # no deadline items
        logs = requests.get(f"{server.url}/api/v2/eventLogs", headers=headers, timeout=30)
        assert logs.status_code == 200, logs.text
        missed = [e for e in logs.json()["event_logs"] if e["event"] == "deadline_missed"]
        assert [e["run_id"] for e in missed] == [run.run_id]
    finally:
        server.stop()
