"""DAG and task options on the local serverless stack: moto, the queue poller, warm workers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.local.stack import LocalStack

OPTIONS_DAG = """
from chalicelib.sdk import DAG, TriggerRule, get_current_context, task

with DAG("options_e2e", schedule=None, is_paused_upon_creation=True):

    @task(map_index_template="{{ region }}", max_active_tis_per_dagrun=2)
    def load(region: str) -> str:
        get_current_context()["region"] = region.upper()
        return region

    @task
    def broken() -> None:
        raise RuntimeError("no data today")

    @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def report() -> str:
        return "done"

    [load.expand(region=["eu", "us", "ap"]), broken()] >> report()
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("options_project")
    (project / "dags").mkdir()
    (project / "dags" / "options_e2e.py").write_text(textwrap.dedent(OPTIONS_DAG))
    with LocalStack(workers=2, tick_seconds=3600) as running:
        report = running.deploy(Path(project))  # unpause=True, but the DAG says otherwise
        assert report.ok, report.problems
        yield running


def test_options_on_the_local_stack(stack: LocalStack) -> None:
    store = wiring.state_store()
    record = store.get_dag("options_e2e")
    assert record is not None and record.paused  # is_paused_upon_creation=True wins
    run = stack.trigger("options_e2e")  # a manual run starts even when paused
    stack.wait_for_run("options_e2e", run.run_id, timeout=120)
    named = {i: store.get_instance("options_e2e", run.run_id, "load", i) for i in range(3)}
    assert {i: ti.rendered_map_index for i, ti in named.items() if ti} == {
        0: "EU",
        1: "US",
        2: "AP",
    }
    broken = store.get_instance("options_e2e", run.run_id, "broken", -1)
    final = store.get_instance("options_e2e", run.run_id, "report", -1)
    assert broken is not None and broken.state is TaskState.FAILED
    assert final is not None and final.state is TaskState.SUCCESS  # one success was enough
    done = store.get_run("options_e2e", run.run_id)
    assert done is not None and done.state is DagRunState.SUCCESS  # its leaf succeeded
