"""Run tries in the worker Lambda with an asynchronous (``Event``) invoke.

An async invoke returns once Lambda has queued the event, so a hand-off costs
one API call whatever the task does; Lambda retries the event itself if the
function errors, and the worker's claim makes such a retry a no-op.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import (
    THROTTLING_CODES,
    DispatchError,
    DispatchHandle,
    DispatchUnavailable,
    Executor,
    is_unavailable,
)

ASYNC_ACCEPTED = 202


class DispatchThrottled(DispatchUnavailable):
    """Lambda refused the invoke for lack of concurrency: trying again later may work."""


class LambdaExecutor(Executor):
    kind = "lambda"

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self.function_name = function_name

    def dispatch(self, message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        try:
            response = self._client.invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=message.model_dump_json().encode(),
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            text = (
                f"lambda {self.function_name} refused {message.label}: "
                f"{code}: {error.get('Message', '')}"
            )
            if code in THROTTLING_CODES:
                raise DispatchThrottled(text) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if is_unavailable(status, code):
                raise DispatchUnavailable(text) from exc
            raise DispatchError(text) from exc
        except BotoCoreError as exc:
            raise DispatchUnavailable(
                f"lambda {self.function_name} unreachable for {message.label}: {exc}"
            ) from exc
        status = response.get("StatusCode")
        if status != ASYNC_ACCEPTED:
            raise DispatchError(
                f"lambda {self.function_name} answered {status} to the async invoke of "
                f"{message.label} (expected {ASYNC_ACCEPTED})"
            )
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        return DispatchHandle(self.kind, request_id or "unknown")
