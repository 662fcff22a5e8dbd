"""A mapped task group on the local serverless stack (moto, the queue poller, warm
workers, the DynamoDB store and the workers' hand-off): instances run index by
index, a failure stays in its index, and the task below the group gets the list."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.local.stack import LocalStack

GROUP_DAG = """
from airflow.decorators import dag, task, task_group


@dag(schedule=None)
def mapped_group_e2e():
    @task
    def sizes():
        return [1, 2, 3, 4]

    @task_group
    def per_size(size, unit):
        @task(map_index_template="{{ task.op_kwargs['size'] }}{{ task.op_kwargs['unit'] }}")
        def measure(size, unit):
            if size == 3:
                raise ValueError("size 3 is broken")
            return size * 10

        @task
        def keep(value):
            return value + 1

        return keep(measure(size=size, unit=unit))

    @task(trigger_rule="all_done")
    def collect(values):
        return sorted(values)

    collect(per_size.partial(unit="kg").expand(size=sizes()))


mapped_group_e2e()
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("mapped_group_project")
    (project / "dags").mkdir()
    (project / "dags" / "mapped_group_e2e.py").write_text(textwrap.dedent(GROUP_DAG))
    with LocalStack(workers=2, tick_seconds=3600) as running:
        report = running.deploy(Path(project))
        assert report.ok, report.problems
        yield running


def test_a_mapped_group_runs_index_by_index_on_the_stack(stack: LocalStack) -> None:
    store = wiring.state_store()
    run = stack.trigger("mapped_group_e2e")
    stack.wait_for_run("mapped_group_e2e", run.run_id, timeout=120)

    def state(task_id: str, index: int = -1) -> TaskState | None:
        ti = store.get_instance("mapped_group_e2e", run.run_id, task_id, index)
        return ti.state if ti is not None else None

    assert [state("per_size.measure", i) for i in range(4)] == [
        TaskState.SUCCESS,
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.SUCCESS,
    ]
    assert [state("per_size.keep", i) for i in range(4)] == [
        TaskState.SUCCESS,
        TaskState.SUCCESS,
        TaskState.UPSTREAM_FAILED,
        TaskState.SUCCESS,
    ]
    named = store.get_instance("mapped_group_e2e", run.run_id, "per_size.measure", 1)
    assert named is not None and named.rendered_map_index == "2kg"
    assert state("collect") is TaskState.SUCCESS
    xcoms = wiring.xcom_store("mapped_group_e2e", run.run_id)
    assert xcoms.pull("per_size.keep", 1, "return_value") == (True, 21)  # measure[1] + 1
    assert xcoms.pull("collect", -1, "return_value") == (True, [11, 21, 41])
    done = store.get_run("mapped_group_e2e", run.run_id)
    assert done is not None and done.state is DagRunState.SUCCESS  # its leaf succeeded
