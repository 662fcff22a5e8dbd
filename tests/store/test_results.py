"""Task results in DynamoDB, and in S3 behind a pointer when they are large."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib.store.results import INLINE_LIMIT_BYTES, DynamoXComStore, build_result_model
from chalicelib.store.settings import StoreSettings


@pytest.fixture
def results() -> Iterator[DynamoXComStore]:
    with mock_aws():
        settings = StoreSettings(stage="test", bucket="results-test")
        model = build_result_model(settings)
        model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        s3 = boto3.client("s3", region_name=settings.region)
        s3.create_bucket(Bucket=settings.bucket)
        yield DynamoXComStore("etl", "manual__1", model=model, s3_client=s3, bucket=settings.bucket)


def test_push_pull_and_missing(results: DynamoXComStore) -> None:
    results.push("extract", -1, "return_value", {"rows": [1, 2, 3]})
    assert results.pull("extract", -1, "return_value") == (True, {"rows": [1, 2, 3]})
    assert results.pull("extract", -1, "other") == (False, None)
    results.push("extract", -1, "nothing", None)
    assert results.pull("extract", -1, "nothing") == (True, None)


def test_large_results_go_to_s3(results: DynamoXComStore) -> None:
    big = ["x" * 1000 for _ in range(100)]  # ~100 KB of JSON
    results.push("extract", -1, "return_value", big)
    item = results.model.get(results.pk, "extract#-1#return_value")
    assert item.val is None and item.s3_key.startswith("results/etl#manual__1/extract/")
    assert results.pull("extract", -1, "return_value") == (True, big)
    assert len("".join(big)) > INLINE_LIMIT_BYTES


def test_mapped_values_in_index_order_and_clear(results: DynamoXComStore) -> None:
    for index in (2, 0, 10, 1):
        results.push("work", index, "return_value", index * 10)
    results.push("work", 3, "other", "ignored")
    assert results.pull_mapped("work", "return_value") == [0, 10, 20, 100]
    results.clear("work", 10)
    assert results.pull_mapped("work", "return_value") == [0, 10, 20]
    assert results.pull("work", 3, "other") == (True, "ignored")
