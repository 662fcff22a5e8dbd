"""LambdaExecutor: the async invoke it makes and how refusals surface.

moto cannot run Lambda code here, so these tests check the call, not a run.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import DispatchError, DispatchHandle
from chalicelib.executors.lambda_executor import DispatchThrottled, LambdaExecutor
from tests.executors.messages import message

FUNCTION = "slipstream-test-worker"


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_dispatch_is_an_async_invoke_carrying_the_message(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    msg = message(map_index=3, try_number=2)
    stubber.add_response(
        "invoke",
        {"StatusCode": 202, "ResponseMetadata": {"RequestId": "req-1"}},  # type: ignore[dict-item]
        {
            "FunctionName": FUNCTION,
            "InvocationType": "Event",
            "Payload": msg.model_dump_json().encode(),
        },
    )
    handle = LambdaExecutor(client, FUNCTION).dispatch(msg, ExecutorSpec())
    assert handle == DispatchHandle("lambda", "req-1")


def test_the_payload_reads_back_as_the_same_message(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    sent: list[bytes] = []
    client.meta.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(params["Payload"])
    )
    stubber.add_response("invoke", {"StatusCode": 202})
    msg = message()
    LambdaExecutor(client, FUNCTION).dispatch(msg, ExecutorSpec())
    assert WorkerMessage.model_validate(json.loads(sent[0])) == msg


def test_throttling_is_a_retryable_dispatch_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "invoke", "TooManyRequestsException", "Rate exceeded", http_status_code=429
    )
    with pytest.raises(DispatchThrottled, match=r"slipstream-test-worker refused etl/.*Rate"):
        LambdaExecutor(client, FUNCTION).dispatch(message(), ExecutorSpec())


def test_a_missing_function_is_a_dispatch_error_naming_it(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("invoke", "ResourceNotFoundException", "Function not found")
    with pytest.raises(DispatchError, match="ResourceNotFoundException") as caught:
        LambdaExecutor(client, FUNCTION).dispatch(message(), ExecutorSpec())
    assert not isinstance(caught.value, DispatchThrottled)
    assert "etl/scheduled__2024-01-01T00:00:00+00:00/extract#1" in str(caught.value)


def test_a_synchronous_answer_is_refused(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("invoke", {"StatusCode": 200})
    with pytest.raises(DispatchError, match="answered 200"):
        LambdaExecutor(client, FUNCTION).dispatch(message(), ExecutorSpec())


def test_dispatch_on_moto_returns_the_request_id() -> None:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return event\n")
        client = boto3.client("lambda", region_name="us-east-1")
        client.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
        )
        handle = LambdaExecutor(client, FUNCTION).dispatch(message(), ExecutorSpec())
    assert handle.kind == "lambda"
    assert handle.ref
