"""The API's reads on DynamoDB: run lists page through an index and take their
total from a counter that moves with each create and delete, never by counting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from moto import mock_aws

from chalicelib.core.runs import DagRun
from chalicelib.core.states import DagRunState
from chalicelib.store.catalog import Catalog
from chalicelib.store.dynamodb import DynamoStateStore
from tests.core.simulation import make_spec
from tests.store.conftest import make_dynamo_store, store_settings
from tests.store.runs import T0, new_run

SPEC = make_spec({"a": ["b"]})


@pytest.fixture
def store() -> Iterator[DynamoStateStore]:
    with mock_aws():
        built = make_dynamo_store(store_settings())
        assert isinstance(built, DynamoStateStore)
        yield built


def _run(index: int) -> DagRun:
    return new_run(SPEC, T0 + dt.timedelta(hours=index))


def test_the_run_counter_moves_with_creates_and_deletes_only(store: DynamoStateStore) -> None:
    for index in range(7):
        assert store.create_run(_run(index), SPEC)
    assert not store.create_run(_run(3), SPEC)  # a repeat creates nothing and counts nothing
    assert store.run_count(SPEC.dag_id) == 7

    catalog = Catalog(store)
    page = catalog.list_runs(SPEC.dag_id, limit=3, offset=2, descending=False)
    assert page.total == 7
    assert [s.run.run_id for s in page.items] == [_run(i).run_id for i in (2, 3, 4)]
    newest = catalog.list_runs(SPEC.dag_id, limit=2, offset=0, descending=True)
    assert [s.run.run_id for s in newest.items] == [_run(6).run_id, _run(5).run_id]

    live = _run(0)
    assert not catalog.delete_run(live.dag_id, live.run_id)  # still queued: refused
    assert store.run_count(SPEC.dag_id) == 7
    store.start_run(live.dag_id, live.run_id, T0)
    store.finish_run(live.dag_id, live.run_id, DagRunState.SUCCESS, T0)
    assert catalog.delete_run(live.dag_id, live.run_id)
    assert store.run_count(SPEC.dag_id) == 6
    assert catalog.list_runs(SPEC.dag_id, limit=10, offset=0, descending=False).total == 6
