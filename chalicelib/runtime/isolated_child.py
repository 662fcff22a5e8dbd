"""The child interpreter that runs one try's user code.

``python -m chalicelib.runtime.isolated_child IN OUT``, file descriptors both.

Started by ``runtime.isolation`` with a clean environment holding only the
tenant's credentials. It reads its job (pickled by the trusted parent) from
file descriptor IN, imports the DAG file from the bundle folder the parent
extracted, and runs the try exactly as the in-process worker does
(``execute_try`` under ``capture_try``), with every Slipstream-owned service
replaced by a proxy that asks the parent (``isolation_broker``). Its log
lines, its calls and its result go to the parent as JSON frames on OUT; a
``cancel`` frame from the parent stops the try as the heartbeat's cancel does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from chalicelib.aws.errors import is_infrastructure_error
from chalicelib.runtime.isolation_codec import (
    decode_frame,
    read_bytes,
    result_to_json,
    write_json,
)
from chalicelib.runtime.isolation_proxies import (
    BrokerClient,
    DagStatesProxy,
    DagTriggerProxy,
    HitlProxy,
    WakeupsProxy,
    XComProxy,
)
from chalicelib.runtime.timeout import TryCancel
from chalicelib.secrets import secret_masker
from chalicelib.secrets.lookup import tenant_scope


class _ForwardingSink:
    """Stands in for the try's log sink: each line, masked here with the secrets
    this interpreter read, goes to the parent, which writes it to the real sink."""

    def __init__(self, send: Callable[[dict[str, Any]], None]):
        self.send = send

    def emit(
        self, event: str, *, level: str = "info", logger: str = "task", when: float | None = None
    ) -> None:
        try:
            text = secret_masker.mask(event)
        except Exception:
            text = "<log line withheld: the redaction hook failed>"
        created = time.time() if when is None else when
        self.send({"log": {"event": text, "level": level, "logger": logger, "when": created}})

    def flush(self) -> None:
        """Lines are sent as they come; the parent's sink ships them."""


class Channel:
    """Frames to the parent (one writer at a time) and the thread reading its frames."""

    def __init__(self, inbound: BinaryIO, outbound: BinaryIO):
        self.inbound = inbound
        self.outbound = outbound
        self._lock = threading.Lock()
        self.broker = BrokerClient(self.send)
        self.cancel = TryCancel()

    def send(self, frame: dict[str, Any]) -> None:
        with self._lock:
            write_json(self.outbound, frame)

    def listen(self) -> None:
        threading.Thread(target=self._read, name="isolation-inbound", daemon=True).start()

    def _read(self) -> None:
        try:
            while (body := read_bytes(self.inbound)) is not None:
                frame = decode_frame(body)
                if "reply" in frame:
                    self.broker.deliver(frame)
                elif "cancel" in frame:
                    self.cancel.cancel(str(frame["cancel"]))
        finally:  # the parent is gone: nobody will answer, nor record the try
            self.broker.close()
            self.cancel.cancel("the worker that started this try is gone")


def _clock(job: dict[str, Any]) -> Callable[[], dt.datetime]:
    """The parent's time at the start, moved on by this process's monotonic clock."""
    start, origin = job["now"], time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - origin)


def _load_dag(job: dict[str, Any]) -> Any:
    """The job's DAG, imported from the folder the parent extracted, with the
    bundle (and its operator plugins) first on the path, as ``BundleStore.load_dag``
    does in-process. A fresh interpreter has no other bundle's modules to forget,
    and does not import the deploy package (a second of start-up saved)."""
    from chalicelib.core.errors import DagValidationError, SlipstreamError
    from chalicelib.sdk.loader import load_dags

    root = Path(job["root"]).resolve()
    path = (root / job["fileloc"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise FileNotFoundError(f"bundle {job['bundle_key']} has no DAG file {job['fileloc']!r}")
    plugins = root / job["plugins"]
    sys.path[:0] = [str(root), *([str(plugins)] if plugins.is_dir() else [])]
    result = load_dags([str(path)], check=False)
    if job["dag_id"] in result.dags:
        return result.dags[job["dag_id"]]
    if result.problems:
        raise DagValidationError(result.problems)
    found = ", ".join(sorted(result.dags)) or "none"
    raise SlipstreamError(
        f"bundle {job['bundle_key']}: no DAG {job['dag_id']!r} in {job['fileloc']}; found: {found}"
    )


def run_try(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    from chalicelib.runtime.dag_states import reading_dag_states
    from chalicelib.runtime.dag_triggers import triggering_dags
    from chalicelib.runtime.executing import execute_try
    from chalicelib.runtime.hitl import answering_hitl
    from chalicelib.runtime.outlets import TriggeringAssetEvents
    from chalicelib.runtime.sensor_wakeups import waking_sensors
    from chalicelib.runtime.task_log import capture_try

    broker = channel.broker
    sink = _ForwardingSink(channel.send) if job["capture"] else None
    with capture_try(sink, flush=False):  # type: ignore[arg-type]
        try:
            dag = _load_dag(job)
        except Exception as exc:
            kind = "infrastructure" if is_infrastructure_error(exc) else "code"
            return {"load_error": {"kind": kind, "type": type(exc).__name__, "message": str(exc)}}
        events = None
        if job["asset_events"]:
            events = TriggeringAssetEvents(
                lambda: _event_views(broker.call("assets", "triggering_events"))
            )
        request = replace(
            job["request"], dag=dag, cancel=channel.cancel, triggering_asset_events=events
        )
        wakeups = (
            waking_sensors(WakeupsProxy(broker)) if job["wakeups"] else contextlib.nullcontext()
        )
        with (
            reading_dag_states(DagStatesProxy(broker)),
            triggering_dags(DagTriggerProxy(broker)),
            wakeups,
            answering_hitl(HitlProxy(broker)),
        ):
            result = execute_try(request, XComProxy(broker), clock=_clock(job))
    return {"result": result_to_json(result)}


def _event_views(raw: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    from types import SimpleNamespace

    from chalicelib.runtime.outlets import EventView

    return {
        key: [EventView(SimpleNamespace(**event)) for event in events]
        for key, events in raw.items()
    }


def run_dag_callbacks(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    from chalicelib.runtime.dag_callbacks import run_dag_callbacks as run_them

    with tenant_scope(job["run"].tenant):
        return {"ran": run_them(_load_dag(job), job["run"])}


def run_deadline(job: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """Load first, then claim through the parent (a load that fails leaves the
    callback unclaimed, for the tick to send again), then call it."""
    from chalicelib.runtime.deadline_callbacks import call_deadline_callback

    with tenant_scope(job["run"].tenant):
        dag = _load_dag(job)
        if not channel.broker.call("deadline", "claim"):
            return {"claimed": False}
        index = job["index"]
        ok = call_deadline_callback(dag.deadline[index], job["run"], index, job["deadline_time"])
        return {"claimed": True, "ok": ok}


JOBS = {"try": run_try, "dag_callbacks": run_dag_callbacks, "deadline": run_deadline}


def main(argv: list[str]) -> int:
    from chalicelib.runtime.isolation import make_non_dumpable

    # Before the credentials arrive: other processes of this user (another
    # tenant's leftovers in a warm container) cannot read this one's memory.
    make_non_dumpable()
    for fd in (int(argv[1]), int(argv[2])):
        os.set_inheritable(fd, False)  # a command the task starts must not hold the channel
    inbound = os.fdopen(int(argv[1]), "rb", buffering=0)
    outbound = os.fdopen(int(argv[2]), "wb", buffering=0)
    body = read_bytes(inbound)
    if body is None:
        return 2
    job = pickle.loads(body)  # from the parent, which is trusted (never the other way)
    os.environ.update(job.pop("credentials", {}))
    channel = Channel(inbound, outbound)
    channel.listen()
    try:
        answer = JOBS[job["kind"]](job, channel)
    except Exception as exc:
        answer = {"crash": f"{type(exc).__name__}: {secret_masker.mask(str(exc))}"}
    channel.send({"done": answer})
    return 0


def exit_now(code: int) -> None:
    """Leave without the interpreter's slow teardown (a third of a second of
    every try), once logs and streams are flushed and the task's commands that
    still run are killed (the try is over; an exiting worker does the same)."""
    from chalicelib.runtime import process_groups

    for pgid in process_groups.unfinished():
        process_groups.kill(pgid)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv))
