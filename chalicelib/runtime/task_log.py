"""A try's own log: what the task writes, as structured JSON lines, shipped in batches.

While a worker runs a try, everything the task writes (Python logging,
``print``, ``sys.stdout``/``sys.stderr``, and a BashOperator's output, which
that operator already turns into log records line by line) becomes one JSON
line ``{"timestamp", "event", "level", "logger"}``: the field names of Airflow
3's structured task log, so its readers and the UI's log view need no
translation. Lines are buffered and handed to a ``LogWriter`` (CloudWatch in
AWS, see ``chalicelib.store.task_logs``) in batches at the end of the try and
whenever the worker heartbeats, so a running try can be followed live.

This module stays free of AWS: the writer is a port. A failing writer never
fails the task; the worker's own logger says what was lost.

Known limit: a child process that inherits file descriptors 1 and 2 (rather
than piping them, as BashOperator does) writes to the worker's own output,
not to the try's log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TextIO

worker_log = logging.getLogger("slipstream.worker")

# CloudWatch Logs' PutLogEvents limits; each event also costs 26 bytes of overhead.
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000

# Loggers of the machinery around the try: capturing them would log the log shipping.
TASK_LOGGER = "slipstream.task"
_MACHINERY_LOGGERS = ("slipstream.worker", "botocore", "boto3", "urllib3", "s3transfer")

Redactor = Callable[[str], str]
LogEvent = tuple[int, str]  # (milliseconds since the epoch, the JSON line)


def no_redaction(text: str) -> str:
    """The default masking hook: identity until the secret masker is wired in."""
    return text


class LogWriter(Protocol):
    """Stores one batch of events for one try, in order (already within the limits)."""

    def write(self, events: Sequence[LogEvent]) -> None: ...


class TaskLogSink:
    """Buffers one try's JSON lines and ships them in batches CloudWatch accepts.

    ``redact`` is the single masking hook: every message passes through it
    before it is encoded, buffered or split.
    """

    def __init__(
        self,
        writer: LogWriter,
        *,
        redact: Redactor = no_redaction,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_batch_events: int = MAX_BATCH_EVENTS,
    ):
        self.writer = writer
        self.redact = redact
        self.max_event_bytes = max_event_bytes
        self.max_batch_bytes = max_batch_bytes
        self.max_batch_events = max_batch_events
        self._pending: list[LogEvent] = []
        self._last_ms = 0
        self._lock = threading.Lock()  # guards the buffer: tasks and heartbeats both touch it
        self._flush_lock = threading.Lock()  # keeps batches in order across flushing threads

    def emit(
        self, event: str, *, level: str = "info", logger: str = "task", when: float | None = None
    ) -> None:
        """Add one message (split if it is too long for one CloudWatch event)."""
        try:
            text = self.redact(event)
        except Exception:  # a broken masker must not leak the text, nor fail the task
            text = "<log line withheld: the redaction hook failed>"
        created = time.time() if when is None else when
        stamp = dt.datetime.fromtimestamp(created, dt.UTC).isoformat()
        head = {"timestamp": stamp, "event": "", "level": level, "logger": logger}
        budget = self.max_event_bytes - EVENT_OVERHEAD_BYTES - _json_bytes(head)
        lines = [_encode({**head, "event": piece}) for piece in split_to_fit(text, budget)]
        with self._lock:
            millis = max(int(created * 1000), self._last_ms)  # CloudWatch wants them in order
            self._last_ms = millis
            self._pending.extend((millis, line) for line in lines)

    def emit_record(self, fields: dict[str, Any], *, logger: str) -> None:
        """Add one structured line of the worker's own (no user text: not redacted)."""
        created = time.time()
        stamp = dt.datetime.fromtimestamp(created, dt.UTC).isoformat()
        line = _encode({"timestamp": stamp, "level": "info", "logger": logger, **fields})
        with self._lock:
            millis = max(int(created * 1000), self._last_ms)
            self._last_ms = millis
            self._pending.append((millis, line))

    def flush(self) -> None:
        """Ship what is buffered; on failure warn and drop it (the task goes on)."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            for batch in self._batches(pending):
                try:
                    self.writer.write(batch)
                except Exception as exc:
                    worker_log.warning(
                        "task log: %d lines lost, the log store refused them: %s: %s",
                        len(batch),
                        type(exc).__name__,
                        exc,
                    )

    def _batches(self, events: list[LogEvent]) -> Iterator[list[LogEvent]]:
        batch: list[LogEvent] = []
        size = 0
        for event in events:
            cost = len(event[1].encode("utf-8")) + EVENT_OVERHEAD_BYTES
            if batch and (
                len(batch) >= self.max_batch_events or size + cost > self.max_batch_bytes
            ):
                yield batch
                batch, size = [], 0
            batch.append(event)
            size += cost
        if batch:
            yield batch


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


def _json_bytes(record: dict[str, Any]) -> int:
    return len(_encode(record).encode("utf-8"))


def _escaped_bytes(text: str) -> int:
    """Bytes ``text`` takes inside a JSON string (quotes excluded)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def split_to_fit(text: str, budget: int) -> list[str]:
    """``text`` in order, cut into pieces that each fit ``budget`` bytes once JSON-escaped."""
    budget = max(budget, 6)  # room for the widest escape of one character (\\u001f)
    pieces: list[str] = []
    while True:
        size = _escaped_bytes(text)
        if size <= budget:
            pieces.append(text)
            return pieces
        take = min(len(text), budget)
        while take > 1 and _escaped_bytes(text[:take]) > budget:
            take = max(1, min(take - 1, take * budget // _escaped_bytes(text[:take])))
        pieces.append(text[:take])
        text = text[take:]


# ------------------------------------------------------------------ capture


class _Capture:
    """One try being captured: its sink and the half-written lines of its streams."""

    def __init__(self, sink: TaskLogSink):
        self.sink = sink
        self.partial = {"stdout": "", "stderr": ""}

    def write(self, stream: str, text: str) -> None:
        data = self.partial[stream] + text
        *lines, self.partial[stream] = data.split("\n")
        level = "error" if stream == "stderr" else "info"
        for line in lines:
            self.sink.emit(line.rstrip("\r"), level=level, logger=stream)

    def end(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self.sink.emit(rest, level="error" if stream == "stderr" else "info", logger=stream)
        self.partial = {"stdout": "", "stderr": ""}


_registry_lock = threading.RLock()
_captures: dict[int, _Capture] = {}  # thread id -> capture
_saved: dict[str, Any] = {}


def _capture_for(thread_id: int) -> _Capture | None:
    """The capture of that thread; a thread the task started falls to the only one running."""
    found = _captures.get(thread_id)
    if found is None and len(_captures) == 1:
        found = next(iter(_captures.values()))
    return found


class _StreamRouter(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr: a captured thread's text goes to its try."""

    def __init__(self, name: str, original: TextIO):
        self.name_ = name
        self.original = original

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        capture = _capture_for(threading.get_ident())
        if capture is None:
            return self.original.write(text)
        capture.write(self.name_, text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.original.flush()

    def fileno(self) -> int:
        return self.original.fileno()

    def isatty(self) -> bool:
        return False


class _CaptureHandler(logging.Handler):
    """Root handler that turns a captured thread's log records into its try's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_MACHINERY_LOGGERS):
            return
        capture = _capture_for(record.thread or 0)
        if capture is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            capture.sink.emit(
                message, level=record.levelname.lower(), logger=record.name, when=record.created
            )
        except Exception:
            self.handleError(record)


_handler = _CaptureHandler()


def _install() -> None:
    """Route streams and logging through the captures (first capture only)."""
    root = logging.getLogger()
    _saved.update(stdout=sys.stdout, stderr=sys.stderr, level=root.level)
    sys.stdout = _StreamRouter("stdout", sys.stdout)
    sys.stderr = _StreamRouter("stderr", sys.stderr)
    root.addHandler(_handler)
    if root.level > logging.INFO:  # Airflow logs a task's INFO records too
        root.setLevel(logging.INFO)
    # The task logger sits under "slipstream", whose level powertools sets from
    # POWERTOOLS_LOG_LEVEL (WARNING in prod): a try's INFO lines (a BashOperator's
    # output) must reach its log whatever the worker's own log level is.
    task_logger = logging.getLogger(TASK_LOGGER)
    _saved["task_level"] = task_logger.level
    task_logger.setLevel(logging.INFO)


def _uninstall() -> None:
    root = logging.getLogger()
    root.removeHandler(_handler)
    root.setLevel(_saved["level"])
    logging.getLogger(TASK_LOGGER).setLevel(_saved["task_level"])
    for name in ("stdout", "stderr"):
        if isinstance(getattr(sys, name), _StreamRouter):  # someone else may have swapped it
            setattr(sys, name, _saved[name])
    _saved.clear()


@contextlib.contextmanager
def capture_try(sink: TaskLogSink | None, *, flush: bool = True) -> Iterator[TaskLogSink | None]:
    """Capture what this thread (the try) writes into ``sink``, and flush it at the end
    (``flush=False``: the caller flushes later, with lines of its own).

    ``None`` captures nothing, for workers configured without a task log.
    """
    if sink is None:
        yield None
        return
    capture = _Capture(sink)
    thread_id = threading.get_ident()
    with _registry_lock:
        if not _captures:
            _install()
        _captures[thread_id] = capture
    try:
        yield sink
    finally:
        with _registry_lock:
            _captures.pop(thread_id, None)
            if not _captures:
                _uninstall()
        capture.end()
        if flush:
            sink.flush()
