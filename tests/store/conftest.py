"""Store fixtures: the same contract runs against memory and DynamoDB on moto."""

from __future__ import annotations

from collections.abc import Iterator

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from chalicelib.store.base import StateStore
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.memory import InMemoryStateStore
from chalicelib.store.models import build_models, create_tables
from chalicelib.store.settings import StoreSettings


def store_settings(**overrides: object) -> StoreSettings:
    values: dict[str, object] = {"stage": "test", "bucket": "slipstream-test-state"}
    values.update(overrides)
    return StoreSettings(**values)  # type: ignore[arg-type]


def make_dynamo_store(settings: StoreSettings) -> DynamoStateStore:
    models = build_models(settings)
    create_tables(models)
    s3 = boto3.client("s3", region_name=settings.region, endpoint_url=settings.endpoint_url)
    s3.create_bucket(Bucket=settings.bucket)
    return DynamoStateStore(settings, models=models, s3_client=s3)


def each_store(request: pytest.FixtureRequest, **settings: object) -> Iterator[StateStore]:
    """The store a ``params=["memory", "dynamodb"]`` fixture asks for (DynamoDB on moto)."""
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    with mock_aws():
        yield make_dynamo_store(store_settings(**settings))


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    # a small spill threshold, so the contract covers values kept in S3
    yield from each_store(request, large_value_bytes=2_000)
