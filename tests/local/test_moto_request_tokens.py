"""moto, under chalicelib/local/moto_fidelity.py, honours TransactWriteItems'
ClientRequestToken as DynamoDB documents it (moto alone applies a repeat twice)."""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws


class TestMotoHonoursClientRequestToken:
    """DynamoDB's documented idempotency of TransactWriteItems, which moto lacks on its own."""

    @staticmethod
    def _table(client: Any) -> None:
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    @staticmethod
    def _add(client: Any, token: str, amount: str = "1") -> None:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"k": {"S": "c"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": amount}},
                    }
                }
            ],
            ClientRequestToken=token,
        )

    def test_the_same_token_applies_once(self) -> None:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            self._table(client)
            self._add(client, "tok-1")
            self._add(client, "tok-1")
            self._add(client, "tok-2")
            item = client.get_item(TableName="t", Key={"k": {"S": "c"}}, ConsistentRead=True)
            assert item["Item"]["n"] == {"N": "2"}

    def test_the_same_token_with_other_items_is_refused(self) -> None:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            self._table(client)
            self._add(client, "tok-1")
            with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
                self._add(client, "tok-1", amount="5")

    def test_a_cancelled_request_is_not_remembered(self) -> None:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            self._table(client)
            request = {
                "TransactItems": [
                    {
                        "Update": {
                            "TableName": "t",
                            "Key": {"k": {"S": "c"}},
                            "UpdateExpression": "ADD n :one",
                            "ConditionExpression": "attribute_exists(k)",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    }
                ],
                "ClientRequestToken": "tok-1",
            }
            with pytest.raises(client.exceptions.TransactionCanceledException):
                client.transact_write_items(**request)
            client.put_item(TableName="t", Item={"k": {"S": "c"}})
            client.transact_write_items(**request)
            item = client.get_item(TableName="t", Key={"k": {"S": "c"}}, ConsistentRead=True)
            assert item["Item"]["n"] == {"N": "1"}
