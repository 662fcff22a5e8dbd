"""A pk/sk table with one hash-only index, as the moto patches' tests compare answers on."""

from __future__ import annotations

from typing import Any


def create_table_with_index(
    client: Any, *, sk_type: str, index: str, index_key: str, projection: dict[str, Any]
) -> None:
    client.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": sk_type},
            {"AttributeName": index_key, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": index_key, "KeyType": "HASH"}],
                "Projection": projection,
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
