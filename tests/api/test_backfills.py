"""Backfills through Airflow's own client against the served API: create, dry
run, list, get, pause, unpause, cancel, and the runs they make finishing."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow_client.client import BackfillApi, DagRunApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import BackfillPostBody, ReprocessBehavior

from chalicelib import wiring
from chalicelib.core.states import DagRunState
from tests.api.served import Served

UTC = dt.UTC
DAY1 = dt.datetime(2024, 1, 1, tzinfo=UTC)
DAY3 = dt.datetime(2024, 1, 3, tzinfo=UTC)
RUN_IDS = [f"backfill__2024-01-0{d}T00:00:00+00:00" for d in (1, 2, 3)]


@pytest.fixture(scope="module")
def client(served: Served):
    with served.airflow_client() as api_client:
        yield api_client


def body(dag_id: str = "mapped_fanout", **extra) -> BackfillPostBody:
    values = {
        "dag_id": dag_id,
        "from_date": DAY1,
        "to_date": DAY3,
        "max_active_runs": 2,
        "dag_run_conf": {"partitions": 2},
        "reprocess_behavior": ReprocessBehavior.NONE,
    }
    values.update(extra)
    return BackfillPostBody(**values)


def completed(backfill_id: int):
    backfill = wiring.state_store().backfills.get(backfill_id)
    return backfill if backfill is not None and backfill.completed_at is not None else None


def test_dry_run_lists_the_dates_and_writes_nothing(served: Served, client) -> None:
    dry = BackfillApi(client).create_backfill_dry_run(body())
    assert [b.logical_date for b in dry.backfills] == [DAY1, DAY1.replace(day=2), DAY3]
    assert dry.total_entries == 3
    backwards = BackfillApi(client).create_backfill_dry_run(body(run_backwards=True))
    assert backwards.backfills[0].logical_date == DAY3
    assert BackfillApi(client).list_backfills("mapped_fanout").total_entries == 0


def test_backfill_runs_every_date_and_completes(served: Served, client) -> None:
    api = BackfillApi(client)
    created = api.create_backfill(body())
    assert created.dag_id == "mapped_fanout" and created.max_active_runs == 2
    assert created.reprocess_behavior == ReprocessBehavior.NONE
    assert created.dag_run_conf == {"partitions": 2} and not created.is_paused
    for run_id in RUN_IDS:
        run = served.stack.wait_until(
            lambda r=run_id: wiring.state_store().get_run("mapped_fanout", r),
            60,
            f"{run_id} to exist",
        )
        final = served.stack.wait_for_run("mapped_fanout", run.run_id, timeout=120)
        assert final.state is DagRunState.SUCCESS
    served.stack.wait_until(lambda: completed(created.id), 60, "the backfill to complete")
    got = api.get_backfill(created.id)
    assert got.completed_at is not None and got.id == created.id
    listed = api.list_backfills("mapped_fanout")
    assert [b.id for b in listed.backfills] == [created.id] and listed.total_entries == 1
    runs = DagRunApi(client).get_dag_runs("mapped_fanout", run_type=["backfill"])
    assert sorted(r.dag_run_id for r in runs.dag_runs) == RUN_IDS
    assert {r.triggered_by for r in runs.dag_runs} == {"backfill"}
    # every date has a run now: another dry run plans none and says why
    dry = api.create_backfill_dry_run(body())
    assert dry.total_entries == 0
    raw = served.call(
        "POST",
        "/backfills/dry_run",
        json=body().to_dict()
        | {"from_date": "2024-01-01T00:00:00Z", "to_date": "2024-01-03T00:00:00Z"},
    ).json()
    assert {s["reason"] for s in raw["skipped"]} == {"already exists"}


def test_pause_unpause_cancel_and_one_active_backfill(served: Served, client) -> None:
    api = BackfillApi(client)
    start = dt.datetime(2024, 2, 1, tzinfo=UTC)
    long = body(
        "etl_hourly",
        from_date=start,
        to_date=start + dt.timedelta(hours=20),
        max_active_runs=1,
        dag_run_conf={},
    )
    created = api.create_backfill(long)
    paused = api.pause_backfill(created.id)
    assert paused.is_paused and paused.completed_at is None
    with pytest.raises(ApiException) as refused:
        api.create_backfill(long)
    assert refused.value.status == 409
    assert not api.unpause_backfill(created.id).is_paused
    cancelled = api.cancel_backfill(created.id)
    assert cancelled.completed_at is not None and cancelled.is_paused
    with pytest.raises(ApiException) as again:
        api.cancel_backfill(created.id)
    assert again.value.status == 409
    runs = wiring.state_store().backfills.runs_between(
        "etl_hourly", start, start + dt.timedelta(days=2)
    )
    assert len(runs) < 21  # cancelled before every date had a run
    for run in runs:
        served.stack.wait_for_run("etl_hourly", run.run_id, timeout=120)


def test_errors_and_tenants(served: Served, client) -> None:
    api = BackfillApi(client)
    with pytest.raises(ApiException) as event_driven:
        api.create_backfill(body("s3_ingest", dag_run_conf={}))
    # an event-triggered DAG has no timetable of its own: Airflow's "has no schedule", 409
    assert event_driven.value.status == 409
    assert "has no schedule" in event_driven.value.body
    with pytest.raises(ApiException) as backwards:
        api.create_backfill_dry_run(body(from_date=DAY3, to_date=DAY1))
    assert backwards.value.status == 422
    with pytest.raises(ApiException) as missing:
        api.get_backfill(999_999)
    assert missing.value.status == 404
    # a backfill of its own: this test does not lean on another test's
    day = dt.datetime(2024, 3, 1, tzinfo=UTC)
    mine = api.create_backfill(body(from_date=day, to_date=day)).id
    assert served.call("GET", f"/backfills/{mine}", role="viewer", tenant="acme").status_code == 404
    assert (
        served.call("PUT", f"/backfills/{mine}/pause", role="op", tenant="acme").status_code == 404
    )
    assert (
        served.call(
            "GET", "/backfills", role="viewer", params={"dag_id": "mapped_fanout"}, tenant="acme"
        ).status_code
        == 404
    )
    assert served.call("POST", "/backfills", role="user", json={}).status_code == 403
    assert served.call("GET", "/backfills", role="viewer").status_code == 422  # dag_id required
