"""``LambdaInvokeFunctionOperator``: invoke a Lambda function; its response is the result.

As in Airflow's amazon provider: ``payload`` (templated) is sent as is (a str or
bytes: JSON text usually), the decoded response payload is the task's result,
a status outside 200/202/204 or a ``FunctionError`` (the function raised, ran
out of time or memory) fails the try with the function's error payload, and
``log_type="Tail"`` writes the last 4 KB of the function's log to the task log.
``invocation_type="Event"`` returns at once. ``deserialize_payload=True``
makes the result the decoded JSON instead of its text.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.sdk.exceptions import TaskFailed
from operators.aws_base import AWS_TEMPLATE_FIELDS, AwsBaseOperator
from operators.hooks.lambda_function import LambdaHook

_task_log = logging.getLogger("slipstream.task")
SUCCESS_CODES = (200, 202, 204)


class LambdaFunctionError(TaskFailed):
    """The function ran and failed, or the invoke was refused; retries apply."""

    def __init__(self, message: str) -> None:
        super().__init__(message, non_retryable=False)


class LambdaInvokeFunctionOperator(AwsBaseOperator):
    template_fields = (
        "function_name",
        "payload",
        "qualifier",
        "invocation_type",
        *AWS_TEMPLATE_FIELDS,
    )
    template_fields_renderers = {"payload": "json"}
    aws_hook_class = LambdaHook

    def __init__(
        self,
        *,
        function_name: str,
        log_type: str | None = None,
        keep_empty_log_lines: bool = True,
        qualifier: str | None = None,
        invocation_type: str | None = None,
        client_context: str | None = None,
        payload: bytes | str | None = None,
        deserialize_payload: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.function_name = function_name
        self.log_type = log_type
        self.keep_empty_log_lines = keep_empty_log_lines
        self.qualifier = qualifier
        self.invocation_type = invocation_type
        self.client_context = client_context
        self.payload = payload
        self.deserialize_payload = deserialize_payload

    def execute(self, context: Mapping[str, Any]) -> Any:
        hook: Any = self.hook
        _task_log.info("Invoking AWS Lambda function %s", self.function_name)
        response = hook.invoke_lambda(
            function_name=self.function_name,
            invocation_type=self.invocation_type,
            log_type=self.log_type,
            client_context=self.client_context,
            payload=self.payload,
            qualifier=self.qualifier,
        )
        status = response.get("StatusCode")
        if status not in SUCCESS_CODES:
            raise LambdaFunctionError(
                f"Lambda function {self.function_name} did not execute: status {status}"
            )
        self._log_tail(response.get("LogResult"))
        stream = response.get("Payload")
        payload = stream.read().decode() if stream is not None else ""
        if "FunctionError" in response:
            raise LambdaFunctionError(
                f"Lambda function {self.function_name} failed ({response['FunctionError']}): "
                f"{payload[:1000]}"
            )
        _task_log.info("Lambda function %s returned status %s", self.function_name, status)
        if self.deserialize_payload:
            return json.loads(payload) if payload else None
        return payload

    def _log_tail(self, log_result: str | None) -> None:
        if not log_result:
            return
        text = base64.b64decode(log_result).decode(errors="replace")
        for line in text.splitlines():
            if line.strip() or self.keep_empty_log_lines:
                _task_log.info("%s", line)
