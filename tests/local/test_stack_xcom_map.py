"""XComArg.map / .zip on the local serverless stack: moto, the queue poller, warm workers.

The deployed spec (what the scheduler reads) holds only lengths' sources and the
map functions by bundle reference; the workers import the DAG file from the
bundle and run the function inside each mapped instance's try.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.spec import DagSpec, MapSource
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.local.stack import LocalStack

CORPUS_DAG = Path(__file__).resolve().parent.parent / "airflow_corpus" / "xcom_map_zip.py"
DAG_ID = "corpus_xcom_map_zip"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("xcom_map_project")
    (project / "dags").mkdir()
    shutil.copy(CORPUS_DAG, project / "dags" / "xcom_map_zip.py")
    with LocalStack(workers=2, tick_seconds=3600) as running:
        report = running.deploy(project)
        assert report.ok, report.problems
        yield running


def _deployed_spec() -> DagSpec:
    store = wiring.state_store()
    record = store.get_dag(DAG_ID)
    assert record is not None and record.current_version is not None
    version = store.get_dag_version(DAG_ID, record.current_version)
    assert version is not None
    return DagSpec.from_json(version.spec_json)


def test_the_deployed_spec_names_the_sources_and_functions(stack: LocalStack) -> None:
    tasks = _deployed_spec().tasks
    copy = tasks["copy"].mapping
    assert copy is not None and copy.kind == "expand_kwargs"
    assert copy.sources["kwargs"] == MapSource(
        xcom_task_id="list_files", map_callables=["dags.xcom_map_zip:copy_kwargs"]
    )
    zipped = [MapSource(xcom_task_id="list_files"), MapSource(xcom_task_id="count_rows")]
    longest = tasks["pair_longest"].mapping
    assert longest is not None
    assert longest.sources["item"] == MapSource(zip_sources=zipped, zip_longest=True)


def test_map_zip_and_skip_in_the_function_on_the_stack(stack: LocalStack) -> None:
    run = stack.trigger(DAG_ID)
    done = stack.wait_for_run(DAG_ID, run.run_id, timeout=180)
    store = wiring.state_store()
    xcoms = wiring.xcom_store(DAG_ID, run.run_id)

    def state(task_id: str, index: int) -> TaskState | None:
        ti = store.get_instance(DAG_ID, run.run_id, task_id, index)
        return None if ti is None else ti.state

    assert [state("copy", i) for i in range(3)] == [
        TaskState.SUCCESS,
        TaskState.SUCCESS,
        TaskState.SKIPPED,  # AirflowSkipException in the map function, on the worker
    ]
    assert state("pair_shortest", 2) is None  # zip stopped at the shortest input
    assert xcoms.pull("pair_longest", 2, "return_value") == (True, "_tmp.csv:0")
    assert xcoms.pull("pair_upper", 0, "return_value") == (True, "A.CSV:10")
    assert state("verify", -1) is TaskState.SUCCESS
    assert done.state is DagRunState.SUCCESS
