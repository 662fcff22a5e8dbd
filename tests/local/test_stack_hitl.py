"""A human-in-the-loop branch on the local serverless stack: the first poke
records the request and the try waits up_for_reschedule with no worker busy;
the stored answer wakes it (timer messages delivered three times start one
poke), the chosen branch runs and the other is skipped."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
import threading
from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.hitl import HitlKey, HitlResponse
from chalicelib.core.messages import TimerFired
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.executors.local_executor import WorkerStatus
from chalicelib.local.stack import LocalStack
from chalicelib.store.hitl import hitl_store

ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
from operators.hitl import HITLBranchOperator

with DAG("choose", schedule=None):
    ask = HITLBranchOperator(
        task_id="ask", subject="Where to?", options=["Left", "Right"],
        options_mapping={"Left": "left", "Right": "right"},
    )
    ask >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
"""


class Invocations:
    """Each worker answer for ``ask``: the state right after and the busy workers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[int, TaskState, int]] = []
        self.stack: LocalStack | None = None

    def __call__(self, status: WorkerStatus) -> None:
        message = status.message
        if message.task_id != "ask":
            return
        ti = wiring.state_store().get_instance(message.dag_id, message.run_id, "ask", -1)
        assert self.stack is not None and self.stack.executor is not None
        state = ti.state if ti is not None else TaskState.NONE
        with self.lock:
            self.seen.append((message.try_number, state, self.stack.executor.busy_count))


@pytest.fixture(scope="module")
def invocations() -> Invocations:
    return Invocations()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, invocations: Invocations):
    project = tmp_path_factory.mktemp("hitl_project")
    shutil.copytree(ROOT / "operators", project / "operators")
    (project / "dags").mkdir()
    (project / "dags" / "choose.py").write_text(textwrap.dedent(DAG_FILE))
    with LocalStack(workers=2, tick_seconds=3600, on_status=invocations) as running:
        invocations.stack = running
        report = running.deploy(project)
        assert report.ok, report.problems
        yield running


def test_branch_waits_with_no_worker_and_the_answer_wakes_it_once(
    stack: LocalStack, invocations: Invocations
) -> None:
    run = stack.trigger("choose")
    key = HitlKey("choose", run.run_id, "ask", -1)
    hitl = hitl_store(wiring.state_store())

    def parked() -> bool | None:
        ti = wiring.state_store().get_instance("choose", run.run_id, "ask", -1)
        return True if ti is not None and ti.state is TaskState.UP_FOR_RESCHEDULE else None

    stack.wait_until(parked, 60, "the first poke")
    assert stack.executor is not None and stack.executor.wait_idle(30)  # its answer is seen
    assert invocations.seen == [(1, TaskState.UP_FOR_RESCHEDULE, 0)]
    record = hitl.get("default", key)
    assert record is not None and record.response is None
    assert record.request.options == ("Left", "Right")

    now = wiring.utc_now()
    answer = HitlResponse(("Right",), {}, now, {"id": "k", "name": "bob"})
    hitl.respond("default", key, 1, answer)
    ti = wiring.state_store().get_instance("choose", run.run_id, "ask", -1)
    assert ti is not None and ti.next_try_at is not None and ti.next_try_at <= now  # woken
    scheduler = wiring.scheduler()
    for _ in range(3):  # the wake delivered three times: one poke
        timer = TimerFired(dag_id="choose", run_id=run.run_id, task_id="ask")
        scheduler.timer(timer, now, now)
    final = stack.wait_for_run("choose", run.run_id, timeout=60)
    assert final.state is DagRunState.SUCCESS
    assert stack.executor is not None and stack.executor.wait_idle(30)
    # two invocations of try 1 (the downstream may already run beside the second)
    assert [(t, s) for t, s, _ in invocations.seen] == [
        (1, TaskState.UP_FOR_RESCHEDULE),
        (1, TaskState.SUCCESS),
    ]
    store = wiring.state_store()
    states = {t: store.get_instance("choose", run.run_id, t, -1) for t in ("left", "right")}
    assert states["left"] is not None and states["left"].state is TaskState.SKIPPED
    assert states["right"] is not None and states["right"].state is TaskState.SUCCESS
    found, value = wiring.xcom_store("choose", run.run_id).pull("ask", -1, "return_value")
    assert found and value == ["right"]
    stale = HitlResponse(("Left",), {}, now + dt.timedelta(seconds=1), {"id": "k", "name": "eve"})
    from chalicelib.core.hitl import AlreadyResponded

    with pytest.raises(AlreadyResponded):
        hitl.respond("default", key, 1, stale)
