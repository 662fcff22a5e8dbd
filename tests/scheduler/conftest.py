"""Scheduler tests run against both state stores (DynamoDB on moto)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.store.base import StateStore
from tests.store.conftest import each_store


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    yield from each_store(request)
