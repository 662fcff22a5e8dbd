"""The local stack's fast DynamoDB item serialization answers exactly as moto's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.dynamo_type import Item

from chalicelib.local.moto_speed import fast_item_serialization
from tests.local.dynamo_tables import create_table_with_index

EVERY_TYPE: dict[str, Any] = {
    "pk": {"S": "run#1"},
    "sk": {"N": "7"},
    "text": {"S": 'héllo "quoted" \n line'},
    "number": {"N": "-12.50"},
    "blob": {"B": b"\x00\xffbinary"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"\x01", b"\x02\x03"]},
    "nested": {
        "M": {
            "inner": {"L": [{"S": "x"}, {"N": "3"}, {"B": b"\x04"}, {"M": {}}, {"L": []}]},
            "deep": {"M": {"ok": {"BOOL": True}, "none": {"NULL": True}}},
        }
    },
    "empty_list": {"L": []},
}
KEY = {"pk": {"S": "run#1"}, "sk": {"N": "7"}}


def _answers() -> dict[str, Any]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table_with_index(
        client,
        sk_type="N",
        index="by_text",
        index_key="text",
        projection={
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": ["blobs", "nested", "numbers", "flag", "absent"],
        },
    )
    client.put_item(TableName="t", Item=EVERY_TYPE)
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: client.get_item(TableName="t", Key=KEY),
        "query": lambda: client.query(
            TableName="t",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "run#1"}},
        ),
        "scan": lambda: client.scan(TableName="t"),
        "index": lambda: client.query(
            TableName="t",
            IndexName="by_text",
            KeyConditionExpression="#t = :t",
            ExpressionAttributeNames={"#t": "text"},
            ExpressionAttributeValues={":t": EVERY_TYPE["text"]},
        ),
        "top_level_projection": lambda: client.get_item(
            TableName="t",
            Key=KEY,
            ProjectionExpression="#b, strings, nested, absent",
            ExpressionAttributeNames={"#b": "blob"},
        ),
        "nested_projection": lambda: client.get_item(
            TableName="t",
            Key=KEY,
            ProjectionExpression="nested.inner[2], nested.deep.ok, #n",
            ExpressionAttributeNames={"#n": "number"},
        ),
        "batch": lambda: client.batch_get_item(RequestItems={"t": {"Keys": [KEY]}}),
        "update": lambda: client.update_item(
            TableName="t",
            Key=KEY,
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "number"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        "transact_get": lambda: client.transact_get_items(
            TransactItems=[{"Get": {"TableName": "t", "Key": KEY}}]
        ),
    }
    answers = {}
    for name, call in calls.items():
        answer = call()
        answer.pop("ResponseMetadata")
        answers[name] = answer
    return answers


def _moto_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the patch the test session runs under (tests/conftest.py)."""
    current = BaseJSONSerializer._serialize_type_structure
    own = getattr(current, "_slipstream_original", current)
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", own)


def _sets_sorted(value: Any) -> Any:
    """DynamoDB sets have no order (moto's own projection reorders them)."""
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in ("SS", "NS", "BS") else _sets_sorted(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_sets_sorted(v) for v in value]
    return value


def _moto_own_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    current = Item.project
    monkeypatch.setattr(Item, "project", getattr(current, "_slipstream_original", current))


def test_items_of_every_attribute_type_read_back_as_moto_writes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _moto_own(monkeypatch)
    _moto_own_projection(monkeypatch)
    with mock_aws():
        plain = _answers()
    with fast_item_serialization(), mock_aws():
        fast = _answers()
    assert _sets_sorted(fast) == _sets_sorted(plain)
    assert fast["get"]["Item"]["blob"] == {"B": b"\x00\xffbinary"}
    assert sorted(fast["index"]["Items"][0]) == [
        "blobs", "flag", "nested", "numbers", "pk", "sk", "text",
    ]  # fmt: skip


def test_errors_and_table_descriptions_still_come_from_moto() -> None:
    with fast_item_serialization(), mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_item(TableName="missing", Key=KEY)
        _answers()
        described = client.describe_table(TableName="t")["Table"]
        assert described["TableName"] == "t"
        assert described["CreationDateTime"] is not None


def test_entering_twice_patches_once_and_unwinds(monkeypatch: pytest.MonkeyPatch) -> None:
    _moto_own(monkeypatch)
    _moto_own_projection(monkeypatch)
    original = BaseJSONSerializer._serialize_type_structure, Item.project
    with fast_item_serialization():
        patched = BaseJSONSerializer._serialize_type_structure, Item.project
        assert patched[0] is not original[0] and patched[1] is not original[1]
        with fast_item_serialization():
            assert (BaseJSONSerializer._serialize_type_structure, Item.project) == patched
        assert (BaseJSONSerializer._serialize_type_structure, Item.project) == patched
    assert (BaseJSONSerializer._serialize_type_structure, Item.project) == original


def test_a_host_finds_the_backend_moto_finds_and_moto_lists_its_folders_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    current = DomainDispatcherApplication.get_backend_for_host
    own = getattr(current, "_slipstream_original", current)
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", own)
    hosts = [
        "dynamodb.us-east-1.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
        "s3.amazonaws.com",
        "logs.eu-west-1.amazonaws.com",
        "dynamodb",
        "moto_api",
    ]
    app = DomainDispatcherApplication(create_app=lambda backend: backend)
    expected = [app.get_backend_for_host(h) for h in hosts]
    listed = []
    real_list = backends.list_of_moto_modules
    monkeypatch.setattr(
        backends, "list_of_moto_modules", lambda: listed.append(1) or list(real_list())
    )
    with fast_item_serialization():
        first = [app.get_backend_for_host(h) for h in hosts]
        calls_first = len(listed)
        again = [app.get_backend_for_host(h) for h in hosts * 3]
    assert first == expected and again == expected * 3
    assert app.get_backend_for_host(None) is None
    assert len(listed) == calls_first  # remembered: no second listing of moto's folders
