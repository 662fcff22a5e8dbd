"""The assets table: events recorded once, queues as sets, the consumer index."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from moto import mock_aws

from chalicelib.core.assets import AssetRef, asset_id
from chalicelib.store.assets import AssetEvent, AssetStore, event_id
from chalicelib.store.models import build_models, create_tables
from tests.store.conftest import store_settings

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
URI = "s3://lake/orders"


@pytest.fixture
def assets() -> Iterator[AssetStore]:
    with mock_aws():
        models = build_models(store_settings())
        create_tables(models)
        yield AssetStore(models.asset)


def _event(source: str, when: dt.datetime = T0, uri: str = URI) -> AssetEvent:
    return AssetEvent(
        id=event_id(when, source), asset_id=asset_id(uri), uri=uri, timestamp=when,
        extra={"rows": 3}, source_dag_id="p", source_run_id="r", source_task_id="t",
    )  # fmt: skip


def test_the_same_event_recorded_twice_is_one_event(assets: AssetStore) -> None:
    event = _event("try:p|r|t|-1|1")
    assert assets.record_event(event) is True
    assert assets.record_event(event) is False
    page = assets.list_events(asset=None, limit=10, offset=0, descending=False)
    assert page.total == 1
    assert page.items == [event]


def test_event_ids_sort_by_time_and_differ_by_source() -> None:
    assert event_id(T0, "a") != event_id(T0, "b")
    assert event_id(T0, "a") == event_id(T0, "a")
    assert event_id(T0 + dt.timedelta(microseconds=1), "z") > event_id(T0, "a")


def test_queues_are_sets_and_consuming_keeps_what_arrived_meanwhile(assets: AssetStore) -> None:
    assets.enqueue("c", URI, 1)
    assets.enqueue("c", URI, 1)
    assets.enqueue("c", "s3://lake/users", 2)
    assert assets.queued("c") == {URI: {1}, "s3://lake/users": {2}}
    assets.enqueue("c", URI, 3)  # arrives after the check read {1}
    assets.consume("c", {URI: {1}, "s3://lake/users": {2}})
    assert assets.queued("c") == {URI: {3}}
    assets.consume("c", {URI: {3}})
    assert assets.queued("c") == {}
    assets.consume("c", {URI: {3}})  # a repeat is harmless


def test_the_consumer_index_follows_each_deploy(assets: AssetStore) -> None:
    assets.set_dag_assets("c1", [URI, "s3://lake/users"], [(URI, "write")])
    assets.set_dag_assets("c2", [URI])
    assert sorted(assets.consumers(URI)) == ["c1", "c2"]
    assets.set_dag_assets("c1", ["s3://lake/users"], [(URI, "write")])  # no longer waits for URI
    assert assets.consumers(URI) == ["c2"]
    assert assets.consumers("s3://lake/users") == ["c1"]
    assert assets.consumed_by("c1") == ["s3://lake/users"]
    assert assets.references(asset_id(URI)) == (["c2"], [("c1", "write")])
    assets.set_dag_assets("c1", [])
    assert assets.consumers("s3://lake/users") == []
    assert assets.references(asset_id(URI)) == (["c2"], [])


def test_assets_are_registered_once_and_listed_by_id(assets: AssetStore) -> None:
    refs = [AssetRef.build(f"s3://lake/{n}") for n in "abcde"]
    assets.register([*refs, refs[0]], T0)
    assets.register([AssetRef.build("s3://lake/a", extra={"v": 2})], T0 + dt.timedelta(hours=1))
    first = assets.list_assets(limit=2, offset=0)
    rest = assets.list_assets(limit=10, offset=2)
    assert first.total == rest.total == 5
    ids = [a.id for a in first.items + rest.items]
    assert ids == sorted(ids) and len(set(ids)) == 5
    row = assets.get_asset(asset_id("s3://lake/a"))
    assert row is not None and row.extra == {"v": 2}
    assert row.created_at == T0 and row.updated_at == T0 + dt.timedelta(hours=1)
    assert assets.get_asset(1) is None
    assert row.last_event_id is None
    later, earlier = (
        _event("b", T0 + dt.timedelta(hours=2), "s3://lake/a"),
        _event("a", T0, "s3://lake/a"),
    )
    assets.record_event(later)
    assets.record_event(earlier)  # arrives late: the latest stays the latest
    assets.record_event(_event("c", T0, "s3://lake/unknown"))  # no row is made for it
    row = assets.get_asset(asset_id("s3://lake/a"))
    assert row is not None and row.last_event_id == later.id
    assert assets.get_asset(asset_id("s3://lake/unknown")) is None


def test_a_runs_events_are_read_back_by_uri(assets: AssetStore) -> None:
    one, two = _event("x"), _event("y", T0 + dt.timedelta(seconds=1))
    assets.record_event(one)
    assets.record_event(two)
    assets.set_run_events("c", "run1", {URI: {two.id, one.id}})
    assert assets.run_events("c", "run1") == {URI: [one, two]}
    assert assets.run_events("c", "other") == {}


def test_events_of_one_asset_page_through_their_index(assets: AssetStore) -> None:
    for n in range(5):
        assets.record_event(_event(f"s{n}", T0 + dt.timedelta(seconds=n)))
    assets.record_event(_event("other", uri="s3://lake/users"))
    page = assets.list_events(asset=asset_id(URI), limit=2, offset=1, descending=True)
    assert page.total == 5
    assert [e.timestamp.second for e in page.items] == [3, 2]
