"""``LambdaHook``: invoke an AWS Lambda function (Airflow's hooks.lambda_function)."""

from __future__ import annotations

from typing import Any

from operators.hooks.aws_base import AwsBaseHook


class LambdaHook(AwsBaseHook):
    """The ``lambda`` client of an AWS connection."""

    def __init__(self, aws_conn_id: str | None = "aws_default", **kwargs: Any):
        kwargs["client_type"] = "lambda"
        super().__init__(aws_conn_id, **kwargs)

    def invoke_lambda(
        self,
        *,
        function_name: str,
        invocation_type: str | None = None,
        log_type: str | None = None,
        client_context: str | None = None,
        payload: bytes | str | None = None,
        qualifier: str | None = None,
    ) -> dict[str, Any]:
        """``lambda:Invoke`` with only the arguments given (boto3 rejects explicit None)."""
        given = {
            "FunctionName": function_name,
            "InvocationType": invocation_type,
            "LogType": log_type,
            "ClientContext": client_context,
            "Payload": payload,
            "Qualifier": qualifier,
        }
        return dict(self.conn.invoke(**{k: v for k, v in given.items() if v is not None}))
