"""The local stack's partition-only table Query answers exactly as moto's own."""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]
from moto import mock_aws

from chalicelib.local.moto_query import partition_queries
from tests.local.dynamo_tables import create_table_with_index


def _queries() -> list[Any]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table_with_index(
        client, sk_type="S", index="by_state", index_key="st", projection={"ProjectionType": "ALL"}
    )
    for run in range(3):
        for task in range(40):
            client.put_item(
                TableName="t",
                Item={
                    "pk": {"S": f"dag#run{run}"},
                    "sk": {"S": f"t{task:03d}#-1"},
                    "st": {"S": "success" if task % 3 else "failed"},
                    "pad": {"S": "x" * 30_000},  # a few items per 1 MB page: paging matters
                },
            )
    answers = []
    for forward in (True, False):
        pages = client.get_paginator("query").paginate(
            TableName="t",
            KeyConditionExpression="pk = :p AND sk > :s",
            ExpressionAttributeValues={":p": {"S": "dag#run1"}, ":s": {"S": "t005"}},
            ProjectionExpression="sk, st",
            ScanIndexForward=forward,
        )
        answers.append([(p["Items"], p.get("LastEvaluatedKey")) for p in pages])
    window = client.get_paginator("query").paginate(
        TableName="t",
        KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
        ExpressionAttributeValues={
            ":p": {"S": "dag#run2"},
            ":a": {"S": "t002#"},
            ":b": {"S": "t038$"},
        },
        ProjectionExpression="sk, st",
    )
    answers.append([(p["Items"], p.get("LastEvaluatedKey")) for p in window])
    none = client.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "dag#none"}},
    )
    answers.append(none["Items"])
    index = client.query(
        TableName="t",
        IndexName="by_state",
        KeyConditionExpression="st = :s",
        ExpressionAttributeValues={":s": {"S": "failed"}},
        ProjectionExpression="pk, sk",
    )
    answers.append(sorted((i["pk"]["S"], i["sk"]["S"]) for i in index["Items"]))
    answers.append(len(client.scan(TableName="t", ProjectionExpression="pk")["Items"]))
    return answers


def test_partition_queries_answer_as_moto_does() -> None:
    with mock_aws():
        expected = _queries()
    with mock_aws(), partition_queries():
        got = _queries()
    assert got == expected
    assert len(expected[0]) >= 2  # more than one page
    assert len(expected[2]) >= 2  # the BETWEEN window pages too
    window = [i["sk"]["S"] for p in expected[2] for i in p[0]]
    assert window[0] == "t002#-1" and window[-1] == "t038#-1" and len(window) == 37
    assert expected[4] and expected[5] > 0  # the index and the scan read other partitions too
