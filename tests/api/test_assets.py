"""The asset endpoints through Airflow's own client: list and get assets, post an
event from outside (which starts a DAG whose condition it completes), list
events, a DAG's queued events and its ``asset_expression``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_client.client import AssetApi, DAGApi, DagRunApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import CreateAssetEventsBody

from chalicelib import wiring
from chalicelib.core.assets import asset_id
from tests.api.served import ROOT, Served, serve

DAGS = """
import pendulum
from chalicelib.sdk import DAG, Asset, task
from operators.empty import EmptyOperator

A, B = Asset("s3://lake/a"), Asset("s3://lake/b", extra={"owner": "sales"})
START = pendulum.datetime(2024, 1, 1, tz="UTC")

with DAG("writer", schedule=None, start_date=START):
    EmptyOperator(task_id="write_a", outlets=[A])

with DAG("both", schedule=A & B, start_date=START):

    @task
    def read(triggering_asset_events=None):
        return sorted(triggering_asset_events)

    read()
"""
A, B = asset_id("s3://lake/a"), asset_id("s3://lake/b")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("api")) as running:
        project = tmp_path_factory.mktemp("assets")
        (project / "dags").mkdir()
        (project / "dags" / "assets.py").write_text(DAGS)
        (project / "operators").symlink_to(Path(ROOT) / "operators")
        report = running.stack.deploy(project)
        assert report.ok, report.problems
        yield running


@pytest.fixture(scope="module")
def client(served: Served):
    with served.airflow_client() as api_client:
        yield api_client


def test_assets_are_listed_with_their_dags(client) -> None:
    listed = AssetApi(client).get_assets()
    assert listed.total_entries == 2
    by_uri = {a.uri: a for a in listed.assets}
    a = by_uri["s3://lake/a"]
    assert a.id == A and a.group == "asset"
    assert [d.dag_id for d in a.scheduled_dags] == ["both"]
    assert [(t.dag_id, t.task_id) for t in a.producing_tasks] == [("writer", "write_a")]
    assert by_uri["s3://lake/b"].extra == {"owner": "sales"}
    assert AssetApi(client).get_assets(uri_pattern="LAKE/B").total_entries == 1
    assert AssetApi(client).get_asset(B).uri == "s3://lake/b"
    with pytest.raises(ApiException) as missing:
        AssetApi(client).get_asset(12345)
    assert missing.value.status == 404


def test_dag_details_show_the_asset_expression(client) -> None:
    details = DAGApi(client).get_dag_details("both")
    assert details.timetable_summary == "Asset"
    assert details.timetable_description == "Triggered by assets"
    assert details.asset_expression == {
        "all": [
            {"asset": {"uri": "s3://lake/a", "name": "s3://lake/a", "group": "asset", "id": A}},
            {"asset": {"uri": "s3://lake/b", "name": "s3://lake/b", "group": "asset", "id": B}},
        ]
    }


def test_posted_events_start_the_dag_once_both_assets_have_one(client, served: Served) -> None:
    api = AssetApi(client)
    first = api.create_asset_event(CreateAssetEventsBody(asset_id=A, extra={"rows": 1}))
    assert first.uri == "s3://lake/a" and first.extra == {"rows": 1, "from_rest_api": True}
    assert first.created_dagruns == []
    queued = api.get_dag_asset_queued_events("both")
    assert [q.asset_id for q in queued.queued_events] == [A]

    second = api.create_asset_event(CreateAssetEventsBody(asset_id=B))
    (run,) = second.created_dagruns
    assert run.dag_id == "both"
    assert api.get_dag_asset_queued_events("both").total_entries == 0
    final = served.stack.wait_for_run("both", run.run_id, timeout=60)
    assert final.state.value == "success"
    stored = DagRunApi(client).get_dag_run("both", run.run_id)
    assert stored.run_type == "asset_triggered"
    found, value = wiring.xcom_store("both", run.run_id).pull("read", -1, "return_value")
    assert found and value == ["s3://lake/a", "s3://lake/b"]

    events = api.get_asset_events(asset_id=A)
    assert [e.id for e in events.asset_events] == [first.id]
    assert api.get_asset_events().total_entries >= 2
    assert api.get_asset(A).last_asset_event.id == first.id


def test_posting_needs_the_user_role_and_a_known_asset(served: Served) -> None:
    denied = served.call("POST", "/assets/events", role="viewer", json={"asset_id": A})
    assert denied.status_code == 403
    unknown = served.call("POST", "/assets/events", role="user", json={"asset_id": 7})
    assert unknown.status_code == 404
    assert "Asset with ID: `7` was not found" in unknown.json()["detail"]


def test_another_tenant_sees_the_asset_but_not_our_dags(served: Served) -> None:
    answer = served.call("GET", f"/assets/{A}", role="viewer", tenant="acme")
    assert answer.status_code == 200
    assert answer.json()["scheduled_dags"] == [] and answer.json()["producing_tasks"] == []
