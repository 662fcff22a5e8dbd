"""Assets on the local serverless stack: a producer's success and an S3 upload
start the DAGs scheduled on them, with the events in ``triggering_asset_events``.

Nothing hand-builds a message: the producer runs through the worker, and the
upload goes through moto's S3 -> EventBridge -> scheduler queue, as in AWS.
"""

from __future__ import annotations

import textwrap

import pytest

from chalicelib import wiring
from chalicelib.core.runs import DagRun, RunType
from chalicelib.local.stack import LocalStack
from chalicelib.store.catalog import Catalog

DAGS = """
import pendulum
from chalicelib.sdk import DAG, Asset, task
from operators.empty import EmptyOperator

ORDERS = Asset("s3://lake/orders")
DROP = Asset("s3://asset-drop/incoming/data.csv")
START = pendulum.datetime(2024, 1, 1, tz="UTC")

with DAG("producer", schedule=None, start_date=START):
    EmptyOperator(task_id="write", outlets=[ORDERS])

with DAG("consumer", schedule=[ORDERS], start_date=START):

    @task
    def read(triggering_asset_events=None, dag_run=None):
        (event,) = triggering_asset_events[ORDERS]
        assert dag_run.run_type == "asset_triggered", dag_run.run_type
        return [event.source_dag_id, event.source_task_id, event.asset.uri]

    read()

with DAG("on_drop", schedule=DROP, start_date=START):

    @task
    def landed(triggering_asset_events=None):
        events = triggering_asset_events.items()
        return {uri: [e.extra["from"] for e in found] for uri, found in events}

    landed()
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("assets")
    (project / "dags").mkdir()
    (project / "dags" / "assets.py").write_text(textwrap.dedent(DAGS))
    with LocalStack(workers=1, tick_seconds=3600) as running:
        report = running.deploy(project)
        assert report.ok, report.problems
        yield running


def _runs(dag_id: str) -> list[DagRun]:
    page = Catalog(wiring.state_store()).list_runs(dag_id, limit=100, offset=0, descending=False)
    return [stored.run for stored in page.items]


def _result(dag_id: str, run_id: str, task_id: str) -> object:
    found, value = wiring.xcom_store(dag_id, run_id).pull(task_id, -1, "return_value")
    assert found, f"{dag_id}/{run_id}/{task_id} returned nothing"
    return value


def test_a_producers_success_starts_its_consumer(stack: LocalStack) -> None:
    produced = stack.trigger("producer")
    assert stack.wait_for_run("producer", produced.run_id, timeout=60).state.value == "success"
    (run,) = stack.wait_until(lambda: _runs("consumer") or None, 60, "a consumer run")
    assert run.run_type is RunType.ASSET_TRIGGERED
    assert stack.wait_for_run("consumer", run.run_id, timeout=60).state.value == "success"
    assert _result("consumer", run.run_id, "read") == ["producer", "write", "s3://lake/orders"]


def test_an_s3_upload_of_a_consumed_key_starts_its_consumer(stack: LocalStack) -> None:
    assert "asset-drop" in stack.watch_buckets()
    s3 = wiring.client("s3")
    s3.put_object(Bucket="asset-drop", Key="incoming/other.csv", Body=b"x")  # consumed by none
    s3.put_object(Bucket="asset-drop", Key="incoming/data.csv", Body=b"id\n1\n")
    (run,) = stack.wait_until(lambda: _runs("on_drop") or None, 60, "an on_drop run")
    assert stack.wait_for_run("on_drop", run.run_id, timeout=60).state.value == "success"
    assert _result("on_drop", run.run_id, "landed") == {"s3://asset-drop/incoming/data.csv": ["s3"]}
    stack.wait_for_queue_drained()
    assert len(_runs("on_drop")) == 1
