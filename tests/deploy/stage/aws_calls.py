"""Record the IAM actions code really asks of AWS, per Lambda function.

Every boto3 and pynamodb call goes through ``BaseClient._make_api_call``; the
recorder wraps it for the duration of a ``with`` block and files each call
under the function the test says is running (``recorder.running("worker")``).
Operations map to the IAM actions AWS checks for them (a transaction needs
the item actions of its parts, ``HeadObject`` is ``s3:GetObject``...).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.client import BaseClient  # type: ignore[import-untyped]

# Operations whose IAM action has another name.
_RENAMED = {
    ("s3", "HeadObject"): ["GetObject"],
    ("s3", "HeadBucket"): ["ListBucket"],
    ("s3", "ListObjectsV2"): ["ListBucket"],
    ("s3", "ListObjects"): ["ListBucket"],
    ("lambda", "Invoke"): ["InvokeFunction"],
    ("sqs", "SendMessageBatch"): ["SendMessage"],
    ("sqs", "DeleteMessageBatch"): ["DeleteMessage"],
    ("sqs", "ChangeMessageVisibilityBatch"): ["ChangeMessageVisibility"],
    ("dynamodb", "TransactGetItems"): ["GetItem"],
    ("secretsmanager", "BatchGetSecretValue"): ["BatchGetSecretValue", "GetSecretValue"],
}
_TRANSACT_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_BATCH_WRITE_PARTS = {"PutRequest": "PutItem", "DeleteRequest": "DeleteItem"}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The actions IAM evaluates for one API call."""
    if service == "dynamodb" and operation == "TransactWriteItems":
        names = {_TRANSACT_PARTS[k] for item in params.get("TransactItems", []) for k in item}
    elif service == "dynamodb" and operation == "BatchWriteItem":
        names = {
            _BATCH_WRITE_PARTS[k]
            for requests in params.get("RequestItems", {}).values()
            for request in requests
            for k in request
        }
    elif service == "sts" and operation == "AssumeRole" and params.get("Tags"):
        names = {"AssumeRole", "TagSession"}  # session tags need TagSession too
    else:
        names = set(_RENAMED.get((service, operation), [operation]))
    return {f"{service}:{name}" for name in names}


class CallRecorder:
    """Actions by function name; calls outside any ``running`` block are not kept."""

    def __init__(self) -> None:
        self.actions: dict[str, set[str]] = defaultdict(set)
        self.current: str | None = None
        self._invokes: list[dict[str, Any]] = []

    def take_invokes(self) -> list[dict[str, Any]]:
        """Async invokes of Lambda since the last call: moto runs no code, the test does."""
        taken, self._invokes = self._invokes, []
        return taken

    @contextlib.contextmanager
    def running(self, function: str) -> Iterator[None]:
        before, self.current = self.current, function
        try:
            yield
        finally:
            self.current = before

    @contextlib.contextmanager
    def recording(self) -> Iterator[CallRecorder]:
        # The usage meter wraps _make_api_call once per process. Installed
        # inside this patch, its wrap would be undone with the patch and never
        # made again, and every later meter in the process would count nothing.
        from chalicelib.store import usage

        usage.install()
        original = BaseClient._make_api_call
        recorder = self

        def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if recorder.current is not None:
                service = client.meta.service_model.signing_name
                recorder.actions[recorder.current] |= iam_actions(service, operation, params)
            if operation == "Invoke":
                recorder._invokes.append(dict(params))
            return original(client, operation, params)

        with mock.patch.object(BaseClient, "_make_api_call", recorded):
            yield self
