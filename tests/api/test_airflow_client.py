"""Airflow's official client, unchanged, against the served API: its strict
pydantic models accept every answer, so scripts written for Airflow work."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflow_client.client import (
    DAGApi,
    DagRunApi,
    DagVersionApi,
    EventLogApi,
    MonitorApi,
    PoolApi,
    TaskApi,
    TaskInstanceApi,
    VersionApi,
)
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import (
    DAGPatchBody,
    PoolBody,
    PoolPatchBody,
    TriggerDAGRunPostBody,
)

from chalicelib import wiring
from chalicelib.core.states import DagRunState
from tests.api.served import Served


@pytest.fixture(scope="module")
def client(served: Served):
    with served.airflow_client() as api_client:
        yield api_client


@pytest.fixture(scope="module")
def fanout_run(served: Served, client) -> str:
    """One finished run of the mapped example, triggered through the client."""
    run = DagRunApi(client).trigger_dag_run(
        "mapped_fanout",
        TriggerDAGRunPostBody(conf={"partitions": 3}, logical_date=None, note="from the client"),
    )
    final = served.stack.wait_for_run("mapped_fanout", run.dag_run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    return run.dag_run_id


def test_version_and_health(client) -> None:
    assert VersionApi(client).get_version().version
    health = MonitorApi(client).get_health()
    assert health.metadatabase.status == "healthy"


def test_dag_list_filters_and_pages(client) -> None:
    api = DAGApi(client)
    everything = api.get_dags()
    assert everything.total_entries == 4
    assert [d.dag_id for d in everything.dags] == sorted(d.dag_id for d in everything.dags)
    assert "acme_only" not in {d.dag_id for d in everything.dags}  # another tenant's
    page = api.get_dags(limit=2, offset=1)
    assert [d.dag_id for d in page.dags] == [d.dag_id for d in everything.dags][1:3]
    assert page.total_entries == 4
    tagged = api.get_dags(tags=["mapping"])
    assert [d.dag_id for d in tagged.dags] == ["mapped_fanout"]
    assert [d.dag_id for d in api.get_dags(dag_id_pattern="fan").dags] == ["mapped_fanout"]
    newest_first = api.get_dags(order_by=["-dag_id"])
    assert [d.dag_id for d in newest_first.dags] == sorted(
        (d.dag_id for d in everything.dags), reverse=True
    )


def test_dag_get_and_details(client) -> None:
    api = DAGApi(client)
    dag = api.get_dag("etl_hourly")
    assert dag.dag_display_name == "Hourly sensor ETL"
    assert dag.fileloc == "dags/etl_hourly.py"
    assert dag.timetable_summary == "0 * * * *"
    assert {t.name for t in dag.tags} == {"etl", "example"}
    details = api.get_dag_details("etl_hourly")
    assert details.max_active_runs == 1
    assert details.latest_dag_version is not None
    assert details.latest_dag_version.version_number == 1
    assert details.timezone


def test_pause_and_unpause_one_and_many(client) -> None:
    api = DAGApi(client)
    paused = api.patch_dag("branching", DAGPatchBody(is_paused=True))
    assert paused.is_paused is True
    assert api.get_dags(paused=True).total_entries == 1
    both = api.patch_dags(DAGPatchBody(is_paused=True), dag_id_pattern="%i%")
    assert {d.dag_id for d in both.dags} >= {"branching", "s3_ingest"}
    api.patch_dags(DAGPatchBody(is_paused=False), dag_id_pattern="%")
    assert api.get_dags(paused=True).total_entries == 0


def test_tasks(client) -> None:
    api = TaskApi(client)
    tasks = api.get_tasks("mapped_fanout")
    by_id = {t.task_id: t for t in tasks.tasks}
    assert tasks.total_entries == len(by_id) == 3
    mapped = [t for t in tasks.tasks if t.is_mapped]
    assert len(mapped) == 1
    upstream = [t for t in tasks.tasks if mapped[0].task_id in (t.downstream_task_ids or [])]
    assert upstream, "the mapped task has an upstream that lists it downstream"
    one = api.get_task("etl_hourly", "wait_for_source")
    assert one.retries == 2 and one.retry_delay is not None
    assert one.trigger_rule == "all_success"
    with pytest.raises(ApiException) as missing:
        api.get_task("etl_hourly", "nope")
    assert missing.value.status == 404


def test_versions(client) -> None:
    api = DagVersionApi(client)
    versions = api.get_dag_versions("etl_hourly")
    assert versions.total_entries == 1
    assert versions.dag_versions[0].version_number == 1
    assert api.get_dag_version("etl_hourly", 1).dag_id == "etl_hourly"
    with pytest.raises(ApiException) as missing:
        api.get_dag_version("etl_hourly", 7)
    assert missing.value.status == 404


def test_trigger_get_and_list_runs(client, fanout_run: str) -> None:
    api = DagRunApi(client)
    run = api.get_dag_run("mapped_fanout", fanout_run)
    assert run.state.value == "success"
    assert run.run_type.value == "manual"
    assert run.conf == {"partitions": 3}
    assert run.note == "from the client"
    assert run.dag_versions[0].version_number == 1
    assert run.duration is not None and run.duration >= 0
    listed = api.get_dag_runs("mapped_fanout")
    assert fanout_run in {r.dag_run_id for r in listed.dag_runs}
    assert api.get_dag_runs("mapped_fanout", state=["failed"]).total_entries == 0
    succeeded = api.get_dag_runs("mapped_fanout", state=["success"])
    assert fanout_run in {r.dag_run_id for r in succeeded.dag_runs}


def test_trigger_with_an_explicit_run_id_and_its_conflict(client) -> None:
    api = DagRunApi(client)
    body = TriggerDAGRunPostBody(
        dag_run_id="nightly-rerun-1",
        logical_date=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        conf={"partitions": 1},
    )
    run = api.trigger_dag_run("mapped_fanout", body)
    assert run.dag_run_id == "nightly-rerun-1"
    assert run.logical_date == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    with pytest.raises(ApiException) as again:
        api.trigger_dag_run("mapped_fanout", body)
    assert again.value.status == 409


def test_task_instances_of_a_mapped_run(client, fanout_run: str) -> None:
    api = TaskInstanceApi(client)
    listed = api.get_task_instances("mapped_fanout", fanout_run)
    assert listed.total_entries == 2 + 3  # two unmapped tasks and three mapped instances
    assert {ti.state.value for ti in listed.task_instances} == {"success"}
    mapped = [ti for ti in listed.task_instances if ti.map_index >= 0]
    task_id = mapped[0].task_id
    assert sorted(ti.map_index for ti in mapped) == [0, 1, 2]
    only_mapped = api.get_mapped_task_instances("mapped_fanout", fanout_run, task_id)
    assert [ti.map_index for ti in only_mapped.task_instances] == [0, 1, 2]
    one = api.get_mapped_task_instance("mapped_fanout", fanout_run, task_id, 1)
    assert one.map_index == 1 and one.try_number == 1 and one.state.value == "success"
    assert one.dag_version is not None and one.dag_version.version_number == 1
    page = api.get_task_instances("mapped_fanout", fanout_run, limit=2, offset=2)
    assert [(t.task_id, t.map_index) for t in page.task_instances] == [
        (t.task_id, t.map_index) for t in listed.task_instances[2:4]
    ]
    with pytest.raises(ApiException) as unmapped_lookup:
        api.get_task_instance("mapped_fanout", fanout_run, task_id)
    assert unmapped_lookup.value.status == 404


def test_pools_create_get_patch_delete(client) -> None:
    api = PoolApi(client)
    before = api.get_pools()
    assert before.pools[0].name == "default_pool"
    created = api.post_pool(PoolBody(name="warehouse", slots=4, description="DWH loads"))
    assert created.slots == 4 and created.open_slots == 4
    with pytest.raises(ApiException) as twice:
        api.post_pool(PoolBody(name="warehouse", slots=4))
    assert twice.value.status == 409
    assert api.get_pool("warehouse").description == "DWH loads"
    assert api.patch_pool("warehouse", PoolPatchBody(slots=8)).slots == 8
    assert api.get_pools().total_entries == before.total_entries + 1
    api.delete_pool("warehouse")
    with pytest.raises(ApiException) as gone:
        api.get_pool("warehouse")
    assert gone.value.status == 404


def test_changes_are_in_the_event_log(client, fanout_run: str) -> None:
    events = EventLogApi(client).get_event_logs(order_by=["-id"], limit=100)
    triggers = [e for e in events.event_logs if e.event == "trigger_dag_run"]
    assert any(e.run_id == fanout_run and e.owner == "default-admin" for e in triggers)
    one = EventLogApi(client).get_event_log(triggers[0].event_log_id)
    assert one.event == "trigger_dag_run"


def test_connections_create_get_patch_delete_never_show_the_password(client) -> None:
    from airflow_client.client import ConnectionApi
    from airflow_client.client.models import ConnectionBody

    api = ConnectionApi(client)
    body = ConnectionBody(
        connection_id="warehouse_pg",
        conn_type="postgres",
        host="db.internal",
        login="etl",
        password="s3cret-pass",
        port=5432,
        extra='{"sslmode": "require", "api_key": "abc123xyz"}',
    )
    created = api.post_connection(body)
    assert created.password == "***" and created.host == "db.internal"
    with pytest.raises(ApiException) as twice:
        api.post_connection(body)
    assert twice.value.status == 409
    fetched = api.get_connection("warehouse_pg")
    assert fetched.password == "***"  # set, and never shown (Airflow's redaction)
    assert fetched.port == 5432
    assert '"api_key": "***"' in (fetched.extra or "")
    assert "s3cret-pass" not in api.get_connections().model_dump_json()
    body.host = "db2.internal"
    patched = api.patch_connection("warehouse_pg", body, update_mask=["host"])
    assert patched.host == "db2.internal"
    # An answer sent back as it came ("***" for the password) keeps the password.
    body.password = fetched.password
    api.patch_connection("warehouse_pg", body, update_mask=["password", "host"])
    stored = wiring.connection_store().get("default", "warehouse_pg")
    assert stored is not None and stored.password == "s3cret-pass"
    # So does its extra: "***" sent back keeps the stored secret, a changed field changes.
    body.extra = (fetched.extra or "").replace('"require"', '"verify-full"')
    api.patch_connection("warehouse_pg", body, update_mask=["extra"])
    stored = wiring.connection_store().get("default", "warehouse_pg")
    assert stored is not None
    assert json.loads(stored.extra or "{}") == {"sslmode": "verify-full", "api_key": "abc123xyz"}
    api.delete_connection("warehouse_pg")
    with pytest.raises(ApiException) as gone:
        api.get_connection("warehouse_pg")
    assert gone.value.status == 404


def test_variables_create_get_patch_delete(client) -> None:
    from airflow_client.client import VariableApi
    from airflow_client.client.models import VariableBody

    api = VariableApi(client)
    api.post_variable(VariableBody(key="region", value="eu-west-1", description="where"))
    api.post_variable(VariableBody(key="service_token", value="tok-123456"))
    assert api.get_variable("region").value == "eu-west-1"
    assert api.get_variable("service_token").value == "***"
    listed = api.get_variables()
    assert {v.key for v in listed.variables} >= {"region", "service_token"}
    updated = api.patch_variable("region", VariableBody(key="region", value="us-east-2"))
    assert updated.value == "us-east-2"
    api.delete_variable("region")
    api.delete_variable("service_token")
    with pytest.raises(ApiException) as gone:
        api.get_variable("region")
    assert gone.value.status == 404


def test_a_tries_log_is_read_in_pages(client, served: Served) -> None:
    run = DagRunApi(client).trigger_dag_run("etl_hourly", TriggerDAGRunPostBody(logical_date=None))
    final = served.stack.wait_for_run("etl_hourly", run.dag_run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    api = TaskInstanceApi(client)
    # wait_for_source fails its first try ("not ready") and succeeds on the second.
    first = api.get_log("etl_hourly", run.dag_run_id, "wait_for_source", 1, full_content=True)
    events = [line.event for line in first.content.actual_instance]
    assert events, "the first try wrote its log"
    assert first.continuation_token is None
    second = api.get_log("etl_hourly", run.dag_run_id, "wait_for_source", 2)
    assert second.content.actual_instance
    paged: list[str] = []
    token = None
    while True:  # a finished try's log ends with a null token
        page = api.get_log("etl_hourly", run.dag_run_id, "wait_for_source", 1, token=token)
        paged.extend(line.event for line in page.content.actual_instance)
        token = page.continuation_token
        if token is None:
            break
    assert paged == events
    with pytest.raises(ApiException) as no_such_try:
        api.get_log("etl_hourly", run.dag_run_id, "wait_for_source", 9)
    assert no_such_try.value.status == 404


def test_mark_a_run_failed_mark_an_instance_and_clear_it_to_rerun(client, served: Served) -> None:
    from airflow_client.client.models import (
        ClearTaskInstancesBody,
        DAGRunClearBody,
        DAGRunPatchBody,
        PatchTaskInstanceBody,
    )

    runs, tis = DagRunApi(client), TaskInstanceApi(client)
    run = runs.trigger_dag_run(
        "mapped_fanout", TriggerDAGRunPostBody(logical_date=None, conf={"partitions": 2})
    )
    served.stack.wait_for_run("mapped_fanout", run.dag_run_id, timeout=120)
    run_id = run.dag_run_id

    marked = runs.patch_dag_run("mapped_fanout", run_id, DAGRunPatchBody(state="failed"))
    assert marked.state.value == "failed"

    # The client cannot read this answer from Airflow either: its generated oneOf
    # matches a task instance against both NewTaskResponse and TaskInstanceResponse.
    preview = runs.clear_dag_run_without_preload_content(
        "mapped_fanout",
        run_id,
        DAGRunClearBody(),  # a dry run by default
    )
    assert preview.status == 200
    assert json.loads(preview.data)["total_entries"] == 2 + 2
    assert runs.get_dag_run("mapped_fanout", run_id).state.value == "failed"

    mapped_task = next(
        t.task_id for t in TaskApi(client).get_tasks("mapped_fanout").tasks if t.is_mapped
    )
    would = tis.patch_task_instance_dry_run_by_map_index(
        "mapped_fanout", run_id, mapped_task, 1, PatchTaskInstanceBody(new_state="failed")
    )
    assert [(t.task_id, t.map_index, t.state.value) for t in would.task_instances] == [
        (mapped_task, 1, "success")
    ]
    done = tis.patch_task_instance_by_map_index(
        "mapped_fanout", run_id, mapped_task, 1, PatchTaskInstanceBody(new_state="failed")
    )
    assert done.task_instances[0].state.value == "failed"
    assert tis.get_mapped_task_instance("mapped_fanout", run_id, mapped_task, 1).state.value == (
        "failed"
    )

    # Airflow's defaults: a dry run of failed instances only.
    dry = tis.post_clear_task_instances("mapped_fanout", ClearTaskInstancesBody(dag_run_id=run_id))
    assert [(t.task_id, t.map_index) for t in dry.task_instances] == [(mapped_task, 1)]
    tis.post_clear_task_instances(
        "mapped_fanout", ClearTaskInstancesBody(dag_run_id=run_id, dry_run=False)
    )
    final = served.stack.wait_for_run("mapped_fanout", run_id, timeout=120)
    assert final.state is DagRunState.SUCCESS
    rerun = tis.get_mapped_task_instance("mapped_fanout", run_id, mapped_task, 1)
    assert rerun.state.value == "success" and rerun.try_number == 2


def test_xcom_entries_and_values(client, fanout_run: str) -> None:
    from airflow_client.client import XComApi

    api = XComApi(client)
    run = {"dag_id": "mapped_fanout", "dag_run_id": fanout_run}
    listed = api.get_xcom_entries(**run, task_id="list_partitions")
    assert [e.key for e in listed.xcom_entries] == ["return_value"]
    entry = api.get_xcom_entry_without_preload_content(
        **run, task_id="list_partitions", xcom_key="return_value"
    )
    assert entry.status == 200, entry.data
    value = json.loads(entry.data)["value"]
    assert isinstance(value, list) and len(value) == 3
    mapped = api.get_xcom_entries(**run, task_id="process")
    assert sorted(e.map_index for e in mapped.xcom_entries) == [0, 1, 2]
    with pytest.raises(ApiException) as missing:
        api.get_xcom_entry(**run, task_id="list_partitions", xcom_key="nope")
    assert missing.value.status == 404


def test_tries_of_a_retried_task(client, served: Served) -> None:
    run = DagRunApi(client).trigger_dag_run("etl_hourly", TriggerDAGRunPostBody(logical_date=None))
    served.stack.wait_for_run("etl_hourly", run.dag_run_id, timeout=120)
    api = TaskInstanceApi(client)
    tries = api.get_task_instance_tries("etl_hourly", run.dag_run_id, "wait_for_source")
    assert [t.try_number for t in tries.task_instances] == [1, 2]
    assert tries.task_instances[-1].state.value == "success"
    assert tries.task_instances[0].state is None  # only the latest try's record is kept
    second = api.get_task_instance_try_details("etl_hourly", run.dag_run_id, "wait_for_source", 2)
    assert second.try_number == 2


def test_runs_and_instances_across_dags_with_tilde(client, fanout_run: str) -> None:
    from airflow_client.client.models import DAGRunsBatchBody

    runs = DagRunApi(client)
    everything = runs.get_dag_runs("~", limit=1000)
    assert fanout_run in {r.dag_run_id for r in everything.dag_runs}
    assert {r.dag_id for r in everything.dag_runs} <= {
        "branching",
        "etl_hourly",
        "mapped_fanout",
        "s3_ingest",
    }
    batch = runs.get_list_dag_runs_batch(
        "~", DAGRunsBatchBody(dag_ids=["mapped_fanout"], states=["success"], page_limit=1000)
    )
    assert fanout_run in {r.dag_run_id for r in batch.dag_runs}
    assert {r.dag_id for r in batch.dag_runs} == {"mapped_fanout"}

    tis = TaskInstanceApi(client)
    across = tis.get_task_instances("mapped_fanout", "~", limit=3)
    assert len(across.task_instances) == 3
    following = tis.get_task_instances("mapped_fanout", "~", limit=3, offset=3)
    first_six = tis.get_task_instances("mapped_fanout", "~", limit=6)
    assert [(t.dag_run_id, t.task_id, t.map_index) for t in first_six.task_instances] == [
        (t.dag_run_id, t.task_id, t.map_index)
        for t in across.task_instances + following.task_instances
    ]
    anywhere = tis.get_task_instances("~", "~", state=["success"], limit=10)
    assert anywhere.task_instances
    assert {t.state.value for t in anywhere.task_instances} == {"success"}
