"""Entry point of the worker container (ECS/Fargate): run the one try it was started for.

The message comes in ``SLIPSTREAM_WORKER_MESSAGE`` (or as the first argument).
The exit code tells the reaper what happened: 0 when the try ran (whatever
its outcome, which is recorded in the state store), 1 when the worker itself
failed before it could record anything.
"""

from __future__ import annotations

import os
import sys

from chalicelib.core.messages import WorkerMessage


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    raw = args[0] if args else os.environ.get("SLIPSTREAM_WORKER_MESSAGE")
    if not raw:
        print("worker: no message (SLIPSTREAM_WORKER_MESSAGE or argv[1])", file=sys.stderr)
        return 2
    try:
        message = WorkerMessage.model_validate_json(raw)
    except ValueError as exc:
        print(f"worker: bad message: {exc}", file=sys.stderr)
        return 2
    from chalicelib.runtime.worker import handle_worker_message

    try:
        outcome = handle_worker_message(message)
    except Exception as exc:  # nothing recorded: let ECS show a failed container
        print(f"worker: {message.label} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"worker: {message.label}: claimed={outcome.claimed} state={outcome.state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
