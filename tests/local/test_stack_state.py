"""The local stack's state kept between restarts (``state_dir``): saved on stop,
restored on start before anything runs; an interrupted save keeps the previous
snapshot; a snapshot of another format is refused and nothing is changed.

Waits are on the stack's notifications (``wait_until``), never on a sleep.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.local import snapshot, snapshot_services
from chalicelib.local.stack import LocalStack
from chalicelib.secrets.connection import Connection
from chalicelib.secrets.variable_store import VariableRecord

pytestmark = pytest.mark.slow

DAGS = """
import datetime as dt
import time

from chalicelib.sdk import DAG, task

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

with DAG("kept", schedule=None, start_date=START, catchup=False):

    @task
    def make() -> int:
        return 41

    @task
    def add(value: int) -> int:
        print("adding one")
        return value + 1

    add(make()){extra}

with DAG("gated", schedule=None, start_date=START, catchup=False):

    @task(retries=1, retry_delay=dt.timedelta(0))
    def hold(ti=None) -> str:
        while ti.try_number == 1:  # the first try runs until its worker is stopped
            time.sleep(0.05)
        return "second try"

    hold()
"""


def project(root: Path, extra: str = "") -> Path:
    (root / "dags").mkdir(parents=True, exist_ok=True)
    (root / "dags" / "shapes.py").write_text(DAGS.replace("{extra}", extra))
    return root


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_runs_versions_variables_keys_and_logs_are_back_after_a_restart(tmp_path) -> None:
    state = tmp_path / "state"
    root = project(tmp_path / "project")
    with LocalStack(workers=1, tick_seconds=3600, state_dir=state) as first:
        assert first.restored is None  # nothing saved yet: a fresh stack
        assert first.deploy(root).ok
        project(root, extra="\n    make.override(task_id='again')()")
        assert first.deploy(root).ok  # a second version of "kept"
        run = first.trigger("kept")
        assert first.wait_for_run("kept", run.run_id, 120).state is DagRunState.SUCCESS
        wiring.variable_store().put("default", VariableRecord("greeting", "hi"), create_only=True)
        wiring.connection_store().put(
            "default", Connection(conn_id="db", conn_type="postgres", host="h"), create_only=True
        )
        from chalicelib.api import deps

        _, token = deps.api_keys().create(tenant="default", role="admin", now=now())
    assert (state / snapshot.CURRENT).is_file()

    with LocalStack(workers=1, tick_seconds=3600, state_dir=state) as second:
        assert second.restored is not None and second.restored["items"] > 0
        from chalicelib.api import deps

        store = wiring.state_store()
        kept = store.get_run("kept", run.run_id)
        assert kept is not None and kept.state is DagRunState.SUCCESS
        add = store.get_instance("kept", run.run_id, "add", -1)
        assert add is not None and add.state is TaskState.SUCCESS
        assert wiring.xcom_store("kept", run.run_id).pull("add", -1, "return_value") == (True, 42)
        versions = deps.catalog().versions("kept", limit=10, offset=0, descending=False)
        assert versions.total == 2
        assert store.get_dag("gated") is not None
        greeting = wiring.variable_store().get("default", "greeting")
        assert greeting == VariableRecord("greeting", "hi")
        connection = wiring.connection_store().get("default", "db")
        assert connection is not None and connection.host == "h"
        key = deps.api_keys().verify(token, now())
        assert key is not None and key.role == "admin"
        lines, _ = wiring.read_try_log("kept", run.run_id, "add", -1, 1)
        assert any("adding one" in line["event"] for line in lines)
        # The restored stack runs the restored code bundle as it is.
        again = second.trigger("kept")
        assert second.wait_for_run("kept", again.run_id, 120).state is DagRunState.SUCCESS


def test_a_try_running_at_the_stop_is_reaped_and_retried_after_the_restart(tmp_path) -> None:
    state = tmp_path / "state"
    root = project(tmp_path / "project")
    with LocalStack(workers=1, tick_seconds=0.2, state_dir=state, drain_seconds=0.5) as first:
        assert first.deploy(root).ok
        run = first.trigger("gated")

        def running() -> object:
            ti = wiring.state_store().get_instance("gated", run.run_id, "hold", -1)
            return ti if ti is not None and ti.state is TaskState.RUNNING else None

        first.wait_until(running, 60, "the first try to run")
    # Saved with the try RUNNING and its worker gone; no SQS message survives.
    with LocalStack(
        workers=1,
        tick_seconds=0.2,
        state_dir=state,
        heartbeat_timeout=dt.timedelta(seconds=2),
        stall_timeout=dt.timedelta(seconds=2),  # a try stopped before its first beat
    ) as second:
        stuck = wiring.state_store().get_instance("gated", run.run_id, "hold", -1)
        assert stuck is not None and stuck.state is TaskState.RUNNING
        final = second.wait_for_run("gated", run.run_id, 120)
        assert final.state is DagRunState.SUCCESS
        hold = wiring.state_store().get_instance("gated", run.run_id, "hold", -1)
        assert hold is not None and hold.try_number == 2


def test_an_interrupted_save_keeps_the_previous_snapshot(tmp_path, monkeypatch) -> None:
    state = tmp_path / "state"
    with LocalStack(workers=1, tick_seconds=3600, state_dir=state):
        wiring.variable_store().put("default", VariableRecord("kept", "1"), create_only=True)
    before = (state / snapshot.CURRENT).read_text()

    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt  # Ctrl-C again while the logs are being written

    stack = LocalStack(workers=1, tick_seconds=3600, state_dir=state).start()
    wiring.variable_store().put("default", VariableRecord("lost", "2"), create_only=True)
    monkeypatch.setattr(snapshot_services, "dump_logs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stack.stop()
    monkeypatch.undo()
    assert (state / snapshot.CURRENT).read_text() == before
    assert sorted(p.name for p in state.iterdir()) == [snapshot.CURRENT, before.strip()]

    with LocalStack(workers=1, tick_seconds=3600, state_dir=state):
        assert wiring.variable_store().get("default", "kept") is not None
        assert wiring.variable_store().get("default", "lost") is None


@pytest.mark.parametrize(
    "manifest",
    ['{"format": 999, "tables": {}}', "not json at all"],
    ids=["newer-format", "garbled"],
)
def test_a_snapshot_it_cannot_read_is_refused_in_one_line_and_left_alone(
    tmp_path, manifest
) -> None:
    state = tmp_path / "state"
    folder = state / "snapshot-old"
    folder.mkdir(parents=True)
    (folder / snapshot.MANIFEST).write_text(manifest)
    (state / snapshot.CURRENT).write_text("snapshot-old\n")
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    with pytest.raises(snapshot.SnapshotError) as refused:
        LocalStack(workers=1, state_dir=state).start()
    assert "\n" not in str(refused.value)
    assert "snapshot-old" in str(refused.value)
    assert {p: p.read_bytes() for p in state.rglob("*") if p.is_file()} == before


def test_a_table_this_version_does_not_have_is_refused_and_nothing_is_saved(tmp_path) -> None:
    state = tmp_path / "state"
    with LocalStack(workers=1, tick_seconds=3600, state_dir=state):
        pass
    current = state / (state / snapshot.CURRENT).read_text().strip()
    manifest = json.loads((current / snapshot.MANIFEST).read_text())
    manifest["tables"]["slipstream-local-retired"] = {"keys": [], "items": 0}
    (current / snapshot.MANIFEST).write_text(json.dumps(manifest))
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}
    with pytest.raises(snapshot.SnapshotError, match="slipstream-local-retired"):
        LocalStack(workers=1, tick_seconds=3600, state_dir=state).start()
    assert {p: p.read_bytes() for p in state.rglob("*") if p.is_file()} == before


def test_a_queued_run_whose_message_was_not_kept_starts_after_the_restart(
    tmp_path, monkeypatch
) -> None:
    state = tmp_path / "state"
    root = project(tmp_path / "project")
    # The first stack never reads its queue: the run's RunCreated message is
    # still in SQS at the stop, and SQS messages are not saved.
    monkeypatch.setattr(LocalStack, "_poll_queue", lambda self: None)
    with LocalStack(workers=1, tick_seconds=3600, state_dir=state) as first:
        assert first.deploy(root).ok
        run = first.trigger("kept")
    monkeypatch.undo()
    # Deployed timeouts: no stall reconciliation within the test, the wake-up does it.
    with LocalStack(workers=1, tick_seconds=3600, state_dir=state) as second:
        assert second.restored is not None and second.restored["runs_woken"] == 1
        final = second.wait_for_run("kept", run.run_id, 120)
        assert final.state is DagRunState.SUCCESS
