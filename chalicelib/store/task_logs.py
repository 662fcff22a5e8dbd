"""Task logs in CloudWatch Logs: one stream per try, JSON lines, read back in pages.

The stream name mirrors Airflow's log path template
(``dag_id=<dag>/run_id=<run>/task_id=<task>/map_index=<i>/attempt=<try>.log``),
so an Airflow user finds a try's log where they expect it. CloudWatch forbids
``:`` and ``*`` in stream names and run ids contain ``:`` (they embed a
timestamp), so those characters are replaced with ``_``.

A try writes its stream from exactly one worker at a time (the claim decides
who runs it), so no sequence tokens or cross-worker ordering are needed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from chalicelib.runtime.task_log import LogEvent, Redactor, TaskLogSink, no_redaction

_FORBIDDEN_IN_STREAM_NAMES = str.maketrans({":": "_", "*": "_"})
MAX_STREAM_NAME = 512


def stream_name(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """The try's stream, after Airflow's ``dag_id=.../attempt=N.log`` path template."""
    name = (
        f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}"
        f"/map_index={map_index}/attempt={try_number}.log"
    )
    return name.translate(_FORBIDDEN_IN_STREAM_NAMES)[:MAX_STREAM_NAME]


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


class CloudWatchStreamWriter:
    """Writes one try's batches to its stream, creating the stream on first use."""

    def __init__(self, client: Any, group: str, stream: str):
        self.client = client
        self.group = group
        self.stream = stream
        self._created = False
        self._lock = threading.Lock()

    def _ensure_stream(self) -> None:
        with self._lock:
            if self._created:
                return
            try:
                self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
            except Exception as exc:
                if _error_code(exc) != "ResourceAlreadyExistsException":  # a retried try's worker
                    raise
            self._created = True

    def write(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        self._ensure_stream()
        self.client.put_log_events(
            logGroupName=self.group,
            logStreamName=self.stream,
            logEvents=[{"timestamp": millis, "message": line} for millis, line in events],
        )


class TaskLogStore:
    """Where tries' logs live: the group of one stage, a stream per try."""

    def __init__(self, client: Any, group: str, *, redact: Redactor = no_redaction):
        self.client = client
        self.group = group
        self.redact = redact  # the masking hook every sink this store makes applies

    def sink(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
    ) -> TaskLogSink:
        """A fresh sink for one try, writing to that try's stream."""
        stream = stream_name(dag_id, run_id, task_id, map_index, try_number)
        return TaskLogSink(
            CloudWatchStreamWriter(self.client, self.group, stream), redact=self.redact
        )

    def create_group(self) -> None:
        """Idempotent: what infra/stack.yaml does in AWS, for moto and the local stack."""
        try:
            self.client.create_log_group(logGroupName=self.group)
        except Exception as exc:
            if _error_code(exc) != "ResourceAlreadyExistsException":
                raise

    def usage_records(self, dag_id: str, run_id: str, marker: str) -> list[dict[str, Any]]:
        """The structured lines carrying ``marker`` in every try log of one run:
        FilterLogEvents over the run's stream prefix, paged, so the cost is one
        call per page of matches, not one per try."""
        prefix = f"dag_id={dag_id}/run_id={run_id}/".translate(_FORBIDDEN_IN_STREAM_NAMES)
        request: dict[str, Any] = {
            "logGroupName": self.group,
            "logStreamNamePrefix": prefix,
            "filterPattern": f'"{marker}"',
        }
        found: list[dict[str, Any]] = []
        while True:
            try:
                page = self.client.filter_log_events(**request)
            except Exception as exc:
                if _error_code(exc) == "ResourceNotFoundException":
                    return found
                raise
            for event in page.get("events", []):
                try:
                    line = json.loads(event.get("message", ""))
                except ValueError:
                    continue
                if isinstance(line, dict) and line.get("event") == marker:
                    found.append(line)
            token = page.get("nextToken")
            if not token or token == request.get("nextToken"):
                return found
            request["nextToken"] = token

    def read_try_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        try_number: int,
        *,
        token: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the try's lines, oldest first, and the token of the next page.

        ``None`` as the next token means "nothing more for now" (CloudWatch's
        forward token stopped moving); a running try may add lines later, so
        a caller following it keeps its last token. A try with no stream yet
        (not started, or it wrote nothing) reads as empty.
        """
        stream = stream_name(dag_id, run_id, task_id, map_index, try_number)
        request: dict[str, Any] = {
            "logGroupName": self.group,
            "logStreamName": stream,
            "startFromHead": True,
            "limit": max(1, min(limit, 10_000)),
        }
        if token:
            request["nextToken"] = token
        try:
            page = self.client.get_log_events(**request)
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return [], None
            raise
        lines = [_parse(event) for event in page.get("events", [])]
        next_token = page.get("nextForwardToken")
        if next_token == token:  # CloudWatch's way of saying "the end, for now"
            next_token = None
        return lines, next_token


def _parse(event: dict[str, Any]) -> dict[str, Any]:
    """A stored line as its JSON object; a line someone else wrote as plain text."""
    message = event.get("message", "")
    try:
        value = json.loads(message)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    return {"timestamp": event.get("timestamp"), "event": message, "level": "info", "logger": ""}
