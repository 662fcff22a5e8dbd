"""A warm worker process for the local stack: one JSON WorkerMessage per stdin line,
one JSON status line per message on stdout.

It stands in for a warm Lambda environment: imports and adapters are paid for
once at start, so a hand-off costs a pipe write rather than a Python start-up.
A task error is reported and the process goes on to the next line; only end of
input stops it. User code may print: fd 1 is pointed at stderr while it runs,
and the status lines go to a private copy of the original stdout. SIGTERM (the
pool stopping) stops the running try's processes first, as a Lambda's
shutdown would, so none is left behind as an orphan.

    python -m chalicelib.executors.local_worker [--handler module:function]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from chalicelib.core.messages import WorkerMessage
from chalicelib.executors.relay import RELAY
from chalicelib.runtime import process_groups

DEFAULT_HANDLER = "chalicelib.runtime.worker:handle_worker_message"
READY = "ready"

Handler = Callable[[WorkerMessage], Any]


def load_handler(path: str) -> Handler:
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"--handler {path!r}: expected module:function")
    handler = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(handler):
        raise SystemExit(f"--handler {path!r}: {attribute!r} is not a function of {module_name}")
    return handler


def serve(lines: Iterable[str], out: TextIO, handler: Handler) -> None:
    """Answer each message line with ``{"ok": true}`` or ``{"ok": false, "error": ...}``."""
    for line in lines:
        if not line.strip():
            continue
        try:
            message = WorkerMessage.model_validate_json(line)
        except ValueError as exc:
            _answer(out, {"ok": False, "error": f"bad message: {exc}"})
            continue
        try:
            outcome = handler(message)
        except Exception as exc:  # a task error must not end the worker
            status: dict[str, Any] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            status = {"ok": True}
            state = getattr(getattr(outcome, "state", None), "value", None)
            if isinstance(state, str):  # the try's outcome, when the handler says it
                status["state"] = state
        relayed = RELAY.drain()
        if relayed:
            status["dispatch"] = [json.loads(m.model_dump_json()) for m in relayed]
        _answer(out, status)


def _answer(out: TextIO, status: dict[str, Any]) -> None:
    out.write(json.dumps(status) + "\n")
    out.flush()


def _private_stdout() -> TextIO:
    """Keep fd 1 for status lines only: later writes to fd 1 (print, subprocesses)
    land on stderr."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _warm(handler_path: str) -> None:
    """Build the real worker's adapters now, as a Lambda init phase would; a failure
    here is reported by the first message instead."""
    if handler_path != DEFAULT_HANDLER:
        return
    try:
        from chalicelib.runtime.worker import default_deps

        default_deps()
    except Exception as exc:
        print(f"local worker {os.getpid()}: warm-up failed: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: object) -> None:
    """Task processes run in process groups of their own, which killing this process
    would orphan: stop them (SIGTERM, SIGKILL after the grace), then exit."""
    process_groups.terminate_all(wait=True)
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.executors.local_worker")
    parser.add_argument("--handler", default=DEFAULT_HANDLER, help="module:function")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    protocol = _private_stdout()
    handler = load_handler(args.handler)
    _warm(args.handler)
    _answer(protocol, {READY: True, "pid": os.getpid()})
    serve(sys.stdin, protocol, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
