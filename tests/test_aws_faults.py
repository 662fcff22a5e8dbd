"""The fault injector itself: faults reach code the way AWS's do, through botocore's retries."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from chalicelib.aws.errors import is_expected_aws_error, is_infrastructure_error
from chalicelib.aws.retries import client_config
from tests.aws_faults import AwsFaults

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def sqs():
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1", config=client_config())
        url = client.create_queue(QueueName="q")["QueueUrl"]
        yield client, url


def test_a_few_refusals_are_absorbed_by_botocore_retries(sqs) -> None:
    client, url = sqs
    with AwsFaults(seed=1) as faults:
        faults.refuse("sqs", "SendMessage", times=3)
        client.send_message(QueueUrl=url, MessageBody="x")
    assert faults.count("sqs", "SendMessage") == 4
    assert len(faults.slept) == 3  # backed off three times, without sleeping
    assert (
        client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "1"
    )


def test_persistent_throttling_surfaces_as_the_services_error(sqs) -> None:
    client, url = sqs
    with AwsFaults() as faults:
        faults.refuse("sqs", "SendMessage")
        with pytest.raises(ClientError) as raised:
            client.send_message(QueueUrl=url, MessageBody="x")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert is_infrastructure_error(raised.value)
    assert faults.count("sqs", "SendMessage") == 5  # the policy's bound


def test_ambiguous_write_is_applied_and_still_answered_500() -> None:
    with mock_aws(), AwsFaults() as faults:
        ddb = boto3.client("dynamodb", region_name="us-east-1", config=NO_RETRIES)
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        faults.ambiguous("dynamodb", "PutItem", times=1)
        with pytest.raises(ClientError) as raised:
            ddb.put_item(TableName="t", Item={"k": {"S": "a"}})
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "Item" in ddb.get_item(TableName="t", Key={"k": {"S": "a"}})


def test_disconnects_and_seeded_rates() -> None:
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1", config=NO_RETRIES)
        with AwsFaults() as faults:
            faults.disconnect("sqs", "ListQueues", times=1)
            with pytest.raises(EndpointConnectionError) as raised:
                client.list_queues()
            assert is_infrastructure_error(raised.value)

        def drawn(seed: int) -> list[bool]:
            outcome = []
            with AwsFaults(seed=seed) as faults:
                faults.refuse("sqs", "ListQueues", rate=0.5)
                for _ in range(20):
                    try:
                        client.list_queues()
                        outcome.append(True)
                    except ClientError:
                        outcome.append(False)
            return outcome

        assert drawn(7) == drawn(7)
        assert drawn(7) != drawn(8)


def test_conditional_failures_are_expected_but_not_infrastructure() -> None:
    error = ClientError(
        {"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}, "PutItem"
    )
    assert is_expected_aws_error(error)
    assert not is_infrastructure_error(error)
    assert not is_expected_aws_error(ValueError("bug"))
