"""LambdaInvokeFunctionOperator on moto.

moto runs no Lambda code here (no Docker): with ``use_docker=False`` it echoes
the payload, and with Docker missing it answers ``FunctionError`` with an error
payload, which is exactly the failed-function path.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.dag import DAG
from operators.aws_lambda import LambdaInvokeFunctionOperator
from operators.hooks.aws_base import AwsBaseHook
from tests.operators.support import returned, run_operator


def _create_function(name: str) -> None:
    role = boto3.client("iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
        Publish=True,
    )


@pytest.fixture
def echoing(aws: None) -> Iterator[None]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        _create_function("echo")
        yield


def test_the_response_payload_is_the_result_and_the_payload_is_templated(echoing: None) -> None:
    result, store = run_operator(
        lambda: LambdaInvokeFunctionOperator(
            task_id="invoke", function_name="echo", payload='{"day": "{{ ds }}"}'
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert json.loads(returned(store, "invoke")) == {"day": "2024-01-01"}


def test_deserialize_payload_gives_the_json_value(echoing: None) -> None:
    result, store = run_operator(
        lambda: LambdaInvokeFunctionOperator(
            task_id="invoke",
            function_name="echo",
            payload='{"n": [1, 2]}',
            deserialize_payload=True,
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert returned(store, "invoke") == {"n": [1, 2]}


def test_qualifier_and_invocation_type_reach_the_invoke_call(
    echoing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []
    make_client = AwsBaseHook.get_client_type

    def recording(self: AwsBaseHook, *args: Any, **kwargs: Any) -> Any:
        client = make_client(self, *args, **kwargs)
        client.meta.events.register(
            "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(dict(params))
        )
        return client

    monkeypatch.setattr(AwsBaseHook, "get_client_type", recording)
    result, _ = run_operator(
        lambda: LambdaInvokeFunctionOperator(
            task_id="invoke",
            function_name="echo",
            qualifier="{{ params.version }}",
            invocation_type="Event",
            params={"version": "1"},
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert sent == [{"FunctionName": "echo", "InvocationType": "Event", "Qualifier": "1"}]


def test_a_function_error_fails_the_try_with_its_payload(aws: None) -> None:
    _create_function("broken")  # no Docker: moto answers FunctionError
    result, _ = run_operator(
        lambda: LambdaInvokeFunctionOperator(
            task_id="invoke", function_name="broken", payload="{}", retries=2
        )
    )
    assert result.state is TaskState.UP_FOR_RETRY
    assert (result.error or "").startswith(
        "LambdaFunctionError: Lambda function broken failed (Handled): "
    )


def test_an_unknown_function_fails(aws: None) -> None:
    result, _ = run_operator(
        lambda: LambdaInvokeFunctionOperator(task_id="invoke", function_name="nope")
    )
    assert result.state is TaskState.FAILED
    assert "ResourceNotFoundException" in (result.error or "")


def test_a_dag_invoking_a_function_through_dags_test(echoing: None) -> None:
    with DAG("invoke_dag", schedule=None) as dag:
        LambdaInvokeFunctionOperator(
            task_id="invoke", function_name="echo", payload='{"run": "{{ run_id }}"}'
        )
    assert run_dag_test(dag, show=False).succeeded
