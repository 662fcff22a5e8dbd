"""Scheduler tests run against both state stores (DynamoDB on moto)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from chalicelib.store.base import StateStore
from chalicelib.store.memory import InMemoryStateStore
from tests.store.conftest import make_dynamo_store, store_settings


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    with mock_aws():
        yield make_dynamo_store(store_settings())
