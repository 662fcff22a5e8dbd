"""The local stack's state kept between restarts (``slipstream dev --state-dir DIR``).

moto keeps everything in memory, so stopping the stack lost every run, deploy,
key and log. On stop the stack saves what its services hold into DIR; on start
it loads that into the fresh moto before the scheduler, the workers or the API
run. What is saved, through each service's API (``snapshot_services``):

- every DynamoDB table of the stack, item by item as raw attribute values
  (runs, task instances, DAGs, versions, XComs, pools, backfills, API keys,
  the event log);
- every S3 bucket's objects (code bundles, large XComs and specs);
- Secrets Manager secrets (connections) and SSM parameters (variables);
- CloudWatch Logs groups, streams and events (task logs); CloudWatch, as AWS
  does, refuses events older than 14 days, so those are not restored.

Not saved: SQS messages (and the retry and timeout timers they carry). The
tick alone would not make up for all of them: it reconciles RUNNING runs
that stopped moving, but a QUEUED run whose RunCreated was lost would wait
forever. So after a restore every QUEUED or RUNNING run gets a RunChanged
(``wake_active_runs``), which starts a queued run and re-evaluates a running
one whole; a try left RUNNING (its worker was stopped with the stack) is
reaped by the tick once its heartbeat is stale (or, stopped before its first
beat, once its run stalls), and retried or failed.

Layout: ``DIR/CURRENT`` names the complete snapshot folder ``DIR/snapshot-*``.
A save writes a hidden ``.partial`` folder, fsyncs it, renames it, and only
then replaces CURRENT (a rename too), so an interrupted save leaves the
previous snapshot current and a start never sees half a snapshot. Each
snapshot carries ``FORMAT``; a start refuses any other in one line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.local import snapshot_services as services

FORMAT = 1  # raise when what a snapshot holds, or how, changes
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
PREFIX = "snapshot-"
PARTIAL = ".partial"

Client = Callable[[str], Any]


class SnapshotError(Exception):
    """A state dir that cannot be used; the message is one line for the user."""


def find(state_dir: Path) -> Path | None:
    """The snapshot a start loads from ``state_dir``; None when there is none yet
    (a first start). Raises SnapshotError for anything it cannot load, before the
    stack starts, so nothing is changed."""
    if state_dir.exists() and not state_dir.is_dir():
        raise SnapshotError(f"--state-dir {state_dir} is not a directory")
    pointer = state_dir / CURRENT
    if not pointer.exists():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"cannot read {pointer}: {exc}") from None
    if not name.startswith(PREFIX) or "/" in name or not (state_dir / name).is_dir():
        raise SnapshotError(f"{pointer} names no snapshot folder ({name!r})")
    read_manifest(state_dir / name)
    return state_dir / name


def read_manifest(snapshot: Path) -> dict[str, Any]:
    """The manifest, checked: a snapshot of another format is refused."""
    path = snapshot / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
        raise SnapshotError(
            f"{path} cannot be read ({reason}): not a Slipstream snapshot"
        ) from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT:
        raise SnapshotError(
            f"{snapshot} is a snapshot in format {found!r}; this Slipstream reads format "
            f"{FORMAT} only: start with another --state-dir (or none for a fresh stack)"
        )
    return manifest  # type: ignore[no-any-return]


def save(state_dir: Path, client: Client, tables: Sequence[str]) -> Path:
    """Save the stack's state as the new current snapshot of ``state_dir``; its folder.

    Anything that fails leaves the previous snapshot current and no partial
    folder behind."""
    state_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    work = state_dir / f".{name}{PARTIAL}"
    switched = False
    try:
        work.mkdir()
        manifest = _dump(work, client, tables)
        services.write_file(work / MANIFEST, json.dumps(manifest, indent=2).encode())
        _fsync_dir(work)
        os.rename(work, state_dir / name)
        pointer = state_dir / f".{CURRENT}{PARTIAL}"
        services.write_file(pointer, (name + "\n").encode())
        os.replace(pointer, state_dir / CURRENT)  # the switch: atomic on POSIX
        switched = True
        _fsync_dir(state_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if not switched:
            shutil.rmtree(state_dir / name, ignore_errors=True)
        raise
    _prune(state_dir, keep=name)
    return state_dir / name


def restore(snapshot: Path, client: Client, tables: Sequence[str]) -> dict[str, int]:
    """Load ``snapshot`` into the fresh stack whose tables are ``tables``; counts.

    A table the snapshot has and the stack does not, or one whose keys differ,
    means the snapshot was taken by another version of the store: refused
    before anything is written."""
    manifest = read_manifest(snapshot)
    dynamodb = client("dynamodb")
    saved: dict[str, Any] = manifest.get("tables", {})
    for table, info in saved.items():
        if table not in tables:
            raise SnapshotError(
                f"{snapshot} holds table {table}, which this Slipstream does not have: "
                "start with another --state-dir (or none for a fresh stack)"
            )
        if info.get("keys") != services.key_schema(dynamodb, table):
            raise SnapshotError(
                f"{snapshot} holds table {table} with other keys than this Slipstream's: "
                "start with another --state-dir (or none for a fresh stack)"
            )
    counts = {"items": sum(services.load_table(dynamodb, t, snapshot) for t in saved)}
    counts["objects"] = services.load_buckets(client("s3"), snapshot)
    counts["secrets"] = services.load_secrets(client("secretsmanager"), snapshot)
    counts["parameters"] = services.load_parameters(client("ssm"), snapshot)
    counts["log_events"], counts["log_events_too_old"] = services.load_logs(
        client("logs"), snapshot
    )
    return counts


def wake_active_runs(store: Any, queue: Any) -> int:
    """Send RunChanged for every QUEUED and RUNNING run (the messages SQS held at
    the stop are gone); handling it twice is harmless. How many were sent."""
    from chalicelib.core.messages import RunChanged
    from chalicelib.core.states import DagRunState

    model = store.models.dag_run
    sent = 0
    for state in (DagRunState.QUEUED, DagRunState.RUNNING):
        for item in model.by_state.query(state.value):
            queue.send(RunChanged(dag_id=item.dag_id, run_id=item.run_id))
            sent += 1
    return sent


def _dump(work: Path, client: Client, tables: Sequence[str]) -> dict[str, Any]:
    dynamodb = client("dynamodb")
    table_info = {
        table: {
            "keys": services.key_schema(dynamodb, table),
            "items": services.dump_table(dynamodb, table, work),
        }
        for table in tables
    }
    return {
        "format": FORMAT,
        "saved_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": table_info,
        "objects": services.dump_buckets(client("s3"), work),
        "secrets": services.dump_secrets(client("secretsmanager"), work),
        "parameters": services.dump_parameters(client("ssm"), work),
        "log_events": services.dump_logs(client("logs"), work),
        "not_kept": "SQS messages (a restore sends RunChanged to every active run)",
    }


def _prune(state_dir: Path, keep: str) -> None:
    """Remove older snapshots and what interrupted saves left; never the current one."""
    for entry in state_dir.iterdir():
        stale = entry.name.startswith(PREFIX) and entry.name != keep
        partial = entry.name.startswith(".") and entry.name.endswith(PARTIAL)
        if stale or partial:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
