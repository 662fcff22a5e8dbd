"""SqsSensor: waits for messages on an SQS queue, optionally filtered and deleted."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.sdk.sensors import BaseSensorOperator
from operators.sensors.aws_client import aws_client

log = logging.getLogger("slipstream.task")

FILTERINGS = ("literal", "jsonpath")


def _json_path_values(body: str, path: str) -> list[Any]:
    """The values at a dotted JSON path (``$.a.b`` or ``a.b``); the subset of
    JSONPath that message filters use. A body that is not JSON matches nothing."""
    try:
        node: Any = json.loads(body)
    except ValueError:
        return []
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        if not isinstance(node, Mapping) or part not in node:
            return []
        node = node[part]
    return node if isinstance(node, list) else [node]


class SqsSensor(BaseSensorOperator):
    """Airflow's SqsSensor: receives up to ``max_messages`` per batch for
    ``num_batches`` batches; done when any message passes the filter. The
    messages are pushed as the XCom ``messages`` and, with
    ``delete_message_on_reception``, deleted. Filters: ``literal`` (the body
    equals one of ``message_filtering_match_values``) and ``jsonpath`` (a dotted
    path in ``message_filtering_config`` whose value is one of the match values,
    or any value when none are given)."""

    template_fields = ("sqs_queue", "max_messages", "message_filtering_config")

    def __init__(
        self,
        *,
        sqs_queue: str,
        aws_conn_id: str | None = "aws_default",
        max_messages: int = 5,
        num_batches: int = 1,
        wait_time_seconds: int = 1,
        visibility_timeout: int | None = None,
        message_filtering: str | None = None,
        message_filtering_match_values: Sequence[Any] | None = None,
        message_filtering_config: Any = None,
        delete_message_on_reception: bool = True,
        region_name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = f"SqsSensor (task_id: {self.task_id!r})"
        if message_filtering is not None and message_filtering not in FILTERINGS:
            raise ValueError(
                f"{where}: message_filtering must be one of {', '.join(FILTERINGS)} "
                f"(jsonpath-ext is not supported), got {message_filtering!r}"
            )
        if message_filtering == "literal" and not message_filtering_match_values:
            raise ValueError(f"{where}: literal filtering needs message_filtering_match_values")
        if message_filtering == "jsonpath" and not message_filtering_config:
            raise ValueError(f"{where}: jsonpath filtering needs message_filtering_config")
        if not 1 <= int(max_messages) <= 10:
            raise ValueError(f"{where}: max_messages must be 1 to 10 (SQS), got {max_messages}")
        self.sqs_queue = sqs_queue
        self.aws_conn_id = aws_conn_id
        self.max_messages = max_messages
        self.num_batches = num_batches
        self.wait_time_seconds = wait_time_seconds
        self.visibility_timeout = visibility_timeout
        self.message_filtering = message_filtering
        self.message_filtering_match_values = list(message_filtering_match_values or [])
        self.message_filtering_config = message_filtering_config
        self.delete_message_on_reception = delete_message_on_reception
        self.region_name = region_name

    def poke(self, context: Mapping[str, Any]) -> bool:
        client = aws_client("sqs", self.region_name)
        wanted: list[dict[str, Any]] = []
        for _ in range(max(1, int(self.num_batches))):
            request: dict[str, Any] = {
                "QueueUrl": self.sqs_queue,
                "MaxNumberOfMessages": int(self.max_messages),
                "WaitTimeSeconds": int(self.wait_time_seconds),
            }
            if self.visibility_timeout is not None:
                request["VisibilityTimeout"] = int(self.visibility_timeout)
            received = client.receive_message(**request).get("Messages", [])
            wanted.extend(m for m in received if self.passes(m))
        if not wanted:
            return False
        log.info("Received %d message(s) from %s", len(wanted), self.sqs_queue)
        if self.delete_message_on_reception:
            for start in range(0, len(wanted), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(wanted[start : start + 10])
                ]
                client.delete_message_batch(QueueUrl=self.sqs_queue, Entries=entries)
        context["ti"].xcom_push(key="messages", value=wanted)
        return True

    def passes(self, message: Mapping[str, Any]) -> bool:
        body = str(message.get("Body", ""))
        if self.message_filtering is None:
            return True
        if self.message_filtering == "literal":
            return body in self.message_filtering_match_values
        values = _json_path_values(body, str(self.message_filtering_config))
        if not self.message_filtering_match_values:
            return bool(values)
        return any(v in self.message_filtering_match_values for v in values)
