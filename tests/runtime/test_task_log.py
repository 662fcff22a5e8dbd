"""Capturing a try's output into JSON lines and batching them (no AWS: a list writer)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence

import pytest

from chalicelib.runtime.task_log import (
    EVENT_OVERHEAD_BYTES,
    LogEvent,
    TaskLogSink,
    capture_try,
    split_to_fit,
)


class ListWriter:
    def __init__(self) -> None:
        self.batches: list[list[LogEvent]] = []

    def write(self, events: Sequence[LogEvent]) -> None:
        self.batches.append(list(events))

    @property
    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for batch in self.batches for _, line in batch]


class FailingWriter:
    def write(self, events: Sequence[LogEvent]) -> None:
        raise ConnectionError("CloudWatch is down")


def test_print_stdout_stderr_and_logging_become_json_lines() -> None:
    writer = ListWriter()
    with capture_try(TaskLogSink(writer)):
        print("hello", "world")
        sys.stdout.write("part one, ")
        sys.stdout.write("part two\n")
        print("to stderr", file=sys.stderr)
        logging.getLogger("user.etl").info("rows=%d", 3)
        logging.getLogger("user.etl").error("bad row")
        sys.stdout.write("no newline at the end")

    lines = writer.lines
    assert [(x["event"], x["level"], x["logger"]) for x in lines] == [
        ("hello world", "info", "stdout"),
        ("part one, part two", "info", "stdout"),
        ("to stderr", "error", "stderr"),
        ("rows=3", "info", "user.etl"),
        ("bad row", "error", "user.etl"),
        ("no newline at the end", "info", "stdout"),
    ]
    assert all(set(x) == {"timestamp", "event", "level", "logger"} for x in lines)
    assert str(lines[0]["timestamp"]).endswith("+00:00")
    stamps = [millis for batch in writer.batches for millis, _ in batch]
    assert stamps == sorted(stamps)


def test_streams_and_logging_are_restored_after_the_try() -> None:
    stdout, stderr, level = sys.stdout, sys.stderr, logging.getLogger().level
    with capture_try(TaskLogSink(ListWriter())):
        assert sys.stdout is not stdout
    assert (sys.stdout, sys.stderr, logging.getLogger().level) == (stdout, stderr, level)


def test_other_threads_output_is_not_taken_while_two_tries_run() -> None:
    first, second = ListWriter(), ListWriter()
    started, release = threading.Event(), threading.Event()

    def other_try() -> None:
        with capture_try(TaskLogSink(second)):
            started.set()
            print("from the second try")
            release.wait(10)

    thread = threading.Thread(target=other_try)
    thread.start()
    assert started.wait(10)
    with capture_try(TaskLogSink(first)):
        print("from the first try")
    release.set()
    thread.join(10)

    assert [x["event"] for x in first.lines] == ["from the first try"]
    assert [x["event"] for x in second.lines] == ["from the second try"]


def test_worker_machinery_loggers_stay_out_of_the_try_log() -> None:
    writer = ListWriter()
    with capture_try(TaskLogSink(writer)):
        logging.getLogger("botocore.endpoint").warning("retrying")
        logging.getLogger("slipstream.worker").warning("heartbeat")
    assert writer.lines == []


def test_redact_hook_sees_every_message_before_it_is_stored() -> None:
    writer = ListWriter()
    sink = TaskLogSink(writer, redact=lambda text: text.replace("s3cr3t", "***"))
    with capture_try(sink):
        print("password=s3cr3t")
        logging.getLogger("user").warning("token %s", "s3cr3t")
    assert [x["event"] for x in writer.lines] == ["password=***", "token ***"]


def test_a_failing_writer_warns_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    failing = capture_try(TaskLogSink(FailingWriter()))
    with caplog.at_level(logging.WARNING, logger="slipstream.worker"), failing:
        print("lost, but the task goes on")
    assert "CloudWatch is down" in caplog.text


def test_an_oversize_line_is_split_in_order_and_each_event_fits() -> None:
    writer = ListWriter()
    sink = TaskLogSink(writer, max_event_bytes=300)
    text = "".join(chr(ord("a") + i % 26) for i in range(1000)) + 'é"\\\n' * 20
    sink.emit(text, logger="user")
    sink.flush()

    events = [line for batch in writer.batches for _, line in batch]
    assert len(events) > 4
    assert all(len(e.encode()) + EVENT_OVERHEAD_BYTES <= 300 for e in events)
    assert "".join(json.loads(e)["event"] for e in events) == text


def test_split_to_fit_handles_escapes_and_wide_characters() -> None:
    text = "\x01" * 10 + "日本語" * 10
    pieces = split_to_fit(text, 12)
    assert "".join(pieces) == text
    assert all(len(json.dumps(p, ensure_ascii=False).encode()) - 2 <= 12 for p in pieces)


def test_batches_respect_the_event_count_and_byte_limits() -> None:
    writer = ListWriter()
    sink = TaskLogSink(writer, max_batch_events=3, max_batch_bytes=10_000)
    for i in range(7):
        sink.emit(f"line {i}")
    sink.flush()
    assert [len(b) for b in writer.batches] == [3, 3, 1]

    by_bytes = ListWriter()
    sink = TaskLogSink(by_bytes, max_batch_bytes=400)
    for i in range(10):
        sink.emit("x" * 50 + str(i))
    sink.flush()
    assert len(by_bytes.batches) > 1
    for batch in by_bytes.batches:
        assert sum(len(line.encode()) + EVENT_OVERHEAD_BYTES for _, line in batch) <= 400
    assert [x["event"][-1] for x in by_bytes.lines] == [str(i) for i in range(10)]
