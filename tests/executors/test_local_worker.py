"""The warm worker's line protocol, in process and as a real subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.core.messages import WorkerMessage
from chalicelib.executors.local_worker import load_handler, serve
from tests.executors.messages import message

REPO_ROOT = Path(__file__).resolve().parents[2]


def _serve(lines: list[str], handler: object) -> list[dict[str, object]]:
    out = io.StringIO()
    serve(lines, out, handler)  # type: ignore[arg-type]
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_status_per_message_and_task_errors_do_not_stop_it() -> None:
    seen: list[WorkerMessage] = []

    def handler(msg: WorkerMessage) -> None:
        seen.append(msg)
        if msg.task_id == "boom":
            raise ValueError("bad input")

    lines = [message("a").model_dump_json(), message("boom").model_dump_json(), ""]
    lines.append(message("c").model_dump_json())
    statuses = _serve(lines, handler)
    assert statuses == [
        {"ok": True},
        {"ok": False, "error": "ValueError: bad input"},
        {"ok": True},
    ]
    assert [m.task_id for m in seen] == ["a", "boom", "c"]


def test_the_status_tells_the_tries_outcome_when_the_handler_returns_one() -> None:
    """The local stack looks for new sensor buckets only after a reschedule."""
    from chalicelib.core.states import TaskState
    from chalicelib.runtime.worker import WorkerOutcome

    def handler(msg: WorkerMessage) -> WorkerOutcome | None:
        if msg.task_id == "sensor":
            return WorkerOutcome(claimed=True, state=TaskState.UP_FOR_RESCHEDULE, recorded=True)
        return None

    lines = [message("sensor").model_dump_json(), message("a").model_dump_json()]
    statuses = _serve(lines, handler)
    assert statuses == [{"ok": True, "state": "up_for_reschedule"}, {"ok": True}]


def test_a_malformed_line_is_answered_not_fatal() -> None:
    statuses = _serve(['{"type": "run_try"}', message().model_dump_json()], lambda m: None)
    assert statuses[0]["ok"] is False
    assert str(statuses[0]["error"]).startswith("bad message:")
    assert statuses[1] == {"ok": True}


@pytest.mark.parametrize("path", ["no_colon", "json:nope", ":x"])
def test_a_bad_handler_path_says_what_is_wrong(path: str) -> None:
    with pytest.raises(SystemExit, match=path):
        load_handler(path)


def test_the_subprocess_keeps_stdout_for_status_lines() -> None:
    """User code printing (even from a child process) must not corrupt the protocol."""
    lines = "\n".join(m.model_dump_json() for m in (message("print"), message("boom"))) + "\n"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.executors.local_worker",
            "--handler",
            "tests.executors.fake_handlers:handle",
        ],
        input=lines,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=True,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0]["ready"] is True
    assert answers[1:] == [
        {"ok": True},
        {"ok": False, "error": "RuntimeError: task boom failed on purpose"},
    ]
    assert "user output that must not break the protocol" in done.stderr
    assert "from a child process" in done.stderr
