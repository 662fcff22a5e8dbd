"""``GET /api/v2/slipstream/dags``: the DAG list page in one answer, and the DAG
list reading only its page when nothing filters it."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.api import deps
from tests.api.served import Served


def _ids(body: dict[str, Any]) -> list[str]:
    return [d["dag_id"] for d in body["dags"]]


def test_same_dags_fields_order_and_paging_as_the_dag_list(served: Served) -> None:
    for query in ({}, {"limit": 2, "offset": 1}, {"tags": "example"}, {"order_by": "-dag_id"}):
        plain = served.call("GET", "/dags", params=query)
        overview = served.call("GET", "/slipstream/dags", params=query)
        assert plain.status_code == overview.status_code == 200, overview.text
        assert _ids(overview.json()) == _ids(plain.json())
        assert overview.json()["total_entries"] == plain.json()["total_entries"]
        for listed, shown in zip(plain.json()["dags"], overview.json()["dags"], strict=True):
            assert {k: shown[k] for k in listed} == listed
    assert served.call("GET", "/slipstream/dags", params={"limit": 2}).json()["total_entries"] == 4


def test_latest_runs_newest_first_at_most_the_limit(served: Served) -> None:
    for day in (1, 2, 3):
        made = served.call(
            "POST",
            "/dags/etl_hourly/dagRuns",
            json={"dag_run_id": f"overview_{day}", "logical_date": f"2025-03-0{day}T00:00:00Z"},
        )
        assert made.status_code == 200, made.text
    body = served.call("GET", "/slipstream/dags", params={"dag_runs_limit": 2}).json()
    by_id = {d["dag_id"]: d for d in body["dags"]}
    runs = served.call(
        "GET", "/dags/etl_hourly/dagRuns", params={"limit": 2, "order_by": "-run_after"}
    ).json()["dag_runs"]
    assert [r["dag_run_id"] for r in by_id["etl_hourly"]["latest_dag_runs"]] == [
        "overview_3",
        "overview_2",
    ]
    assert by_id["etl_hourly"]["latest_dag_runs"] == runs
    assert by_id["branching"]["latest_dag_runs"] == []
    none = served.call("GET", "/slipstream/dags", params={"dag_runs_limit": 0}).json()
    assert all(d["latest_dag_runs"] == [] for d in none["dags"])
    too_many = served.call("GET", "/slipstream/dags", params={"dag_runs_limit": 26})
    assert too_many.status_code == 422, too_many.text
    assert "dag_runs_limit" in too_many.text


def test_event_triggers_as_the_triggers_endpoint_gives_them(served: Served) -> None:
    body = served.call("GET", "/slipstream/dags", role="viewer").json()
    by_id = {d["dag_id"]: d for d in body["dags"]}
    triggers = served.call("GET", "/slipstream/dags/s3_ingest/eventTriggers").json()["triggers"]
    assert triggers and by_id["s3_ingest"]["event_triggers"] == triggers
    assert by_id["branching"]["event_triggers"] == []


def test_a_tenant_sees_only_its_dags(served: Served) -> None:
    body = served.call("GET", "/slipstream/dags", tenant="acme").json()
    assert _ids(body) == ["acme_only"] and body["total_entries"] == 1
    assert served.call("GET", "/slipstream/dags", role=None).status_code == 401


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many DAG rows each Query of ``dags.by_tenant`` hands the API."""
    index = deps.catalog().models.dag.by_tenant
    original = index.query
    reads: list[int] = []

    def query(*args: Any, **kwargs: Any) -> Iterator[Any]:
        reads.append(0)
        slot = len(reads) - 1
        for item in original(*args, **kwargs):
            reads[slot] += 1
            yield item

    monkeypatch.setattr(index, "query", query)
    yield reads


def test_an_unfiltered_list_reads_only_its_page(served: Served, counted_reads: list[int]) -> None:
    page = served.call("GET", "/dags", params={"limit": 1, "offset": 1}).json()
    assert _ids(page) == ["etl_hourly"] and page["total_entries"] == 4
    assert counted_reads == [2]  # the row before the offset and the page's
    counted_reads.clear()
    filtered = served.call("GET", "/dags", params={"limit": 1, "dag_id_pattern": "ing"}).json()
    assert _ids(filtered) == ["branching"] and filtered["total_entries"] == 2
    assert counted_reads == [4]  # a pattern needs every row


def test_stale_dags_left_out_of_page_and_total(served: Served) -> None:
    store = wiring.state_store()
    record = store.get_dag("branching")
    assert record is not None
    store.upsert_dag(dataclasses.replace(record, active=False))
    try:
        body = served.call("GET", "/slipstream/dags").json()
        assert "branching" not in _ids(body) and body["total_entries"] == 3
        every = served.call("GET", "/dags", params={"exclude_stale": "false"}).json()
        assert "branching" in _ids(every) and every["total_entries"] == 4
    finally:
        store.upsert_dag(record)


def test_triggers_of_a_dag_deployed_before_summaries_held_them(served: Served) -> None:
    store = wiring.state_store()
    record = store.get_dag("s3_ingest")
    assert record is not None and record.summary
    older = {k: v for k, v in json.loads(record.summary).items() if k != "event_triggers"}
    store.upsert_dag(dataclasses.replace(record, summary=json.dumps(older)))
    try:
        body = served.call("GET", "/slipstream/dags", params={"dag_id_pattern": "s3"}).json()
        triggers = served.call("GET", "/slipstream/dags/s3_ingest/eventTriggers").json()
        assert body["dags"][0]["event_triggers"] == triggers["triggers"] != []
    finally:
        store.upsert_dag(record)


def test_the_first_dags_runs_are_read_before_the_pool_starts(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold process makes the runs table's client on the request's thread, not
    in eight pool threads at once (each of which would make its own)."""
    catalog = deps.catalog()
    original = catalog.latest_runs
    order: list[tuple[str, bool]] = []

    def latest_runs(dag_id: str, limit: int) -> Any:
        order.append((dag_id, threading.current_thread().name.startswith("dags")))
        return original(dag_id, limit)

    monkeypatch.setattr(catalog, "latest_runs", latest_runs)
    body = served.call("GET", "/slipstream/dags", params={"dag_runs_limit": 1}).json()
    assert order[0] == (_ids(body)[0], False)
    assert sorted(dag_id for dag_id, _ in order) == sorted(_ids(body))
    assert all(in_pool for _, in_pool in order[1:])
