"""Sensors on the local serverless stack: each poke is one short worker
invocation, and between pokes the try waits UP_FOR_RESCHEDULE on an SQS delay
message with no worker busy. Timers delivered twice start one poke."""

from __future__ import annotations

import shutil
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.core.messages import TimerFired
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.executors.local_executor import WorkerStatus
from chalicelib.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = """
from pathlib import Path

from chalicelib.sdk import DAG
from operators.sensors.python import PythonSensor
from operators.sensors.s3 import S3KeySensor
from operators.trigger_dagrun import TriggerDagRunOperator


def third_poke(path):
    with open(path, "a") as pokes:
        pokes.write("poke\\n")
    return len(Path(path).read_text().splitlines()) >= 3


with DAG("sensing", schedule=None) as sensing:
    PythonSensor(
        task_id="wait",
        python_callable=third_poke,
        op_kwargs={"path": "{{ dag_run.conf['path'] }}"},
        poke_interval=2,
    )

def second_poke(ti):
    return ti.get_first_reschedule_date() is not None


with DAG("child", schedule=None) as child:
    # done at its second poke: the child takes one reschedule (1 s) at least
    PythonSensor(task_id="ready", python_callable=second_poke, poke_interval=1)

with DAG("parent", schedule=None) as parent:
    TriggerDagRunOperator(
        task_id="run_child",
        trigger_dag_id="child",
        conf={"from": "parent"},
        wait_for_completion=True,
        poke_interval=1,
    )

with DAG("s3_waiting", schedule=None) as s3_waiting:
    # an hour between pokes: only the upload's event can end this within the test
    S3KeySensor(
        task_id="wait",
        bucket_key="s3://drop-zone/ready/*.flag",
        wildcard_match=True,
        poke_interval=3600,
    )

with DAG("sensing_timeout", schedule=None) as sensing_timeout:
    PythonSensor(task_id="hard", python_callable=lambda: False, poke_interval=1, timeout=2)
    PythonSensor(
        task_id="soft", python_callable=lambda: False, poke_interval=1, timeout=2, soft_fail=True
    )
"""


class Observed:
    """Each sensor invocation as its worker answered: the try it ran, the
    instance's state right after, and how many workers were still busy."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: list[tuple[str, str, int, TaskState, int]] = []
        self.stack: LocalStack | None = None
        self.on_first_reschedule: Any = None

    def __call__(self, status: WorkerStatus) -> None:
        message = status.message
        store = wiring.state_store()
        ti = store.get_instance(message.dag_id, message.run_id, message.task_id, -1)
        assert self.stack is not None and self.stack.executor is not None
        busy = self.stack.executor.busy_count
        state = ti.state if ti is not None else TaskState.NONE
        with self.lock:
            self.answers.append((message.dag_id, message.task_id, message.try_number, state, busy))
        if state is TaskState.UP_FOR_RESCHEDULE and self.on_first_reschedule is not None:
            hook, self.on_first_reschedule = self.on_first_reschedule, None
            hook(message, ti)

    def of(self, dag_id: str, task_id: str) -> list[tuple[int, TaskState, int]]:
        with self.lock:
            return [(t, s, b) for d, k, t, s, b in self.answers if (d, k) == (dag_id, task_id)]


def _all_answered(stack: LocalStack) -> None:
    """The run can finish before its last worker's answer reaches the listener."""
    assert stack.executor is not None and stack.executor.wait_idle(30)


@pytest.fixture(scope="module")
def observed() -> Observed:
    return Observed()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, observed: Observed):
    project = tmp_path_factory.mktemp("sensor_project")
    shutil.copytree(ROOT / "operators", project / "operators")
    (project / "dags").mkdir()
    (project / "dags" / "sensing.py").write_text(textwrap.dedent(DAG_FILE))
    with LocalStack(workers=2, tick_seconds=3600, on_status=observed) as running:
        observed.stack = running
        report = running.deploy(project)
        assert report.ok, report.problems
        yield running


def test_a_sensor_reschedules_twice_holding_no_worker_then_succeeds(
    stack: LocalStack, observed: Observed, tmp_path: Path
) -> None:
    pokes = tmp_path / "pokes.txt"

    def duplicate_the_timer(message: Any, ti: Any) -> None:
        # the same timer delivered twice more: still one poke at that time
        scheduler = wiring.scheduler()
        now = wiring.utc_now()
        for _ in range(2):
            timer = TimerFired(
                dag_id=message.dag_id, run_id=message.run_id, task_id=message.task_id
            )
            scheduler.timer(timer, ti.next_try_at, now)

    observed.on_first_reschedule = duplicate_the_timer
    run = stack.trigger("sensing", {"path": str(pokes)})
    final = stack.wait_for_run("sensing", run.run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    _all_answered(stack)
    R = TaskState.UP_FOR_RESCHEDULE
    answers = observed.of("sensing", "wait")
    # three invocations of try 1; after each of the first two the try waited
    # up_for_reschedule while no worker was busy
    assert answers == [(1, R, 0), (1, R, 0), (1, TaskState.SUCCESS, 0)]
    assert pokes.read_text().splitlines() == ["poke"] * 3
    ti = wiring.state_store().get_instance("sensing", run.run_id, "wait", -1)
    assert ti is not None and ti.try_number == 1 and ti.first_poke_at is not None
    assert ti.first_poke_at <= ti.start_date  # the timeout counted from the first poke


def test_sensor_timeout_fails_or_skips_with_soft_fail(
    stack: LocalStack, observed: Observed
) -> None:
    run = stack.trigger("sensing_timeout")
    final = stack.wait_for_run("sensing_timeout", run.run_id, timeout=120)
    assert final.state is DagRunState.FAILED
    _all_answered(stack)
    store = wiring.state_store()
    hard = store.get_instance("sensing_timeout", run.run_id, "hard", -1)
    soft = store.get_instance("sensing_timeout", run.run_id, "soft", -1)
    assert hard is not None and hard.state is TaskState.FAILED
    assert hard.error is not None and "SensorTimeout" in hard.error
    assert soft is not None and soft.state is TaskState.SKIPPED
    for task_id in ("hard", "soft"):
        answers = observed.of("sensing_timeout", task_id)
        assert len(answers) >= 2  # rescheduled at least once before the timeout
        assert answers[0][1] is TaskState.UP_FOR_RESCHEDULE
        assert {t for t, _, _ in answers} == {1}


def test_trigger_dag_run_waits_for_the_child_holding_no_worker(
    stack: LocalStack, observed: Observed
) -> None:
    run = stack.trigger("parent")
    final = stack.wait_for_run("parent", run.run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    _all_answered(stack)
    found, child_run_id = wiring.xcom_store("parent", run.run_id).pull(
        "run_child", -1, "trigger_run_id"
    )
    assert found
    child = wiring.state_store().get_run("child", child_run_id)
    assert child is not None and child.state is DagRunState.SUCCESS
    assert child.conf == {"from": "parent"}
    answers = observed.of("parent", "run_child")
    assert answers[0][1] is TaskState.UP_FOR_RESCHEDULE
    assert answers[-1][1] is TaskState.SUCCESS
    assert {t for t, _, _ in answers} == {1}


def test_an_upload_wakes_a_waiting_s3_key_sensor_at_once(
    stack: LocalStack, observed: Observed
) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
    s3.create_bucket(
        Bucket="drop-zone"
    )  # without EventBridge notifications: the stack turns them on

    def upload(message: Any, ti: Any) -> None:
        s3.put_object(Bucket="drop-zone", Key="ready/2024-06-01.flag", Body=b"")

    observed.on_first_reschedule = upload
    run = stack.trigger("s3_waiting")
    final = stack.wait_for_run("s3_waiting", run.run_id, timeout=90)
    ti = wiring.state_store().get_instance("s3_waiting", run.run_id, "wait", -1)
    assert final.state is DagRunState.SUCCESS, ti
    _all_answered(stack)
    # two pokes of try 1: the first rescheduled for an hour, the upload's event
    # started the second at once; no worker waited in between
    assert observed.of("s3_waiting", "wait") == [
        (1, TaskState.UP_FOR_RESCHEDULE, 0),
        (1, TaskState.SUCCESS, 0),
    ]
    assert "drop-zone" in stack.watch_buckets()
