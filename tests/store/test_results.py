"""Task results in DynamoDB, and in S3 behind a pointer when they are large."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import botocore.client
import pytest
from moto import mock_aws

from chalicelib.store.results import (
    INLINE_LIMIT_BYTES,
    PAGE_BYTES,
    DynamoXComStore,
    build_result_model,
)
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
    big = "x" * 100_000  # not a list: it cannot be paged
    results.push("extract", -1, "return_value", big)
    item = results.model.get(results.pk, "extract#-1#return_value")
    assert item.val is None and item.s3_key.startswith("results/etl#manual__1/extract/")
    assert results.pull("extract", -1, "return_value") == (True, big)
    assert len(big) > INLINE_LIMIT_BYTES
    with pytest.raises(TypeError):
        results.pull_element("extract", -1, "return_value", 0)


class _Calls:
    """DynamoDB calls made while counting (botocore level)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.ops: list[str] = []
        original = botocore.client.BaseClient._make_api_call

        def counting(client, operation, params):  # type: ignore[no-untyped-def]
            self.ops.append(operation)
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)


def test_a_list_result_is_paged_and_an_element_costs_one_small_read(
    results: DynamoXComStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = list(range(10_000))  # ~50 KB of JSON: 13 read units whole
    results.push("items", -1, "return_value", values)
    marker = results.model.get(results.pk, "items#-1#return_value")
    pages = list(results.model.query(results.pk, results.model.sk.startswith(f"{marker.sk}#p")))
    assert marker.pages == len(pages) > 10 and marker.val is None
    assert all(len(page.val) < PAGE_BYTES for page in pages)
    calls = _Calls(monkeypatch)
    for index in (0, 1, 4_999, 9_999):
        assert results.pull_element("items", -1, "return_value", index) == (True, 10_000, index)
    assert calls.ops == ["Query"] * 4
    with pytest.raises(IndexError):
        results.pull_element("items", -1, "return_value", 10_000)
    assert results.pull("items", -1, "return_value") == (True, values)
    results.clear("items", -1)
    assert list(results.model.query(results.pk)) == []


def test_tuples_and_dicts_page_too(results: DynamoXComStore) -> None:
    pairs = {f"key{i}": {"n": i} for i in range(500)}
    results.push("conf", -1, "return_value", pairs)
    assert results.pull("conf", -1, "return_value") == (True, pairs)
    assert results.pull_element("conf", -1, "return_value", 321) == (
        True,
        500,
        ("key321", {"n": 321}),
    )
    items = tuple(f"value-{i}" for i in range(1_000))
    results.push("tup", -1, "return_value", items)
    assert results.pull("tup", -1, "return_value") == (True, items)
    assert results.pull_element("tup", -1, "return_value", 999) == (True, 1_000, "value-999")


def test_small_values_and_neighbouring_keys_read_whole(results: DynamoXComStore) -> None:
    results.push("src", -1, "return_value", [10, 20, 30])
    results.push("src", -1, "return_value!other", "sorts between the value and its pages")
    assert results.pull_element("src", -1, "return_value", 2) == (True, 3, 30)
    assert results.pull_element("src", -1, "missing", 0) == (False, 0, None)


def test_mapped_values_in_index_order_and_clear(results: DynamoXComStore) -> None:
    for index in (2, 0, 10, 1):
        results.push("work", index, "return_value", index * 10)
    results.push("work", 3, "other", "ignored")
    assert results.pull_mapped("work", "return_value") == [0, 10, 20, 100]
    results.clear("work", 10)
    assert results.pull_mapped("work", "return_value") == [0, 10, 20]
    assert results.pull("work", 3, "other") == (True, "ignored")
