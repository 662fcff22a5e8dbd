"""Airflow 3's import errors: the DAG files the tenant's last deploy refused.

A Slipstream deploy is all-or-nothing (a broken file refuses the whole deploy
and writes no DAG state), so "the import errors" are those of the last deploy
a tenant tried: a refused deploy replaces the tenant's errors with one per
failing file, a successful one clears them.

They live in the event log table under the partition ``importerr#<tenant>``
(tenant names never hold ``#``), so no table is added. An error's id is the
deploy's millisecond times 1,000 plus the file's place in the deploy: ids sort
by time, the batch a deploy writes shares ``id // 1000``, and every id stays
below 2**53, so a JavaScript client reads it exactly. Writes are
conditional (``does_not_exist``): running one deploy's recording twice writes
the same items once. The new batch is written before the old one is deleted;
a crash in between leaves both, and readers show only the newest batch, so a
reader never sees two deploys' errors mixed, and the next deploy tidies up.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.core.errors import Problem
from chalicelib.store.catalog import Page
from chalicelib.store.writes import CONDITION_FAILED

PARTITION_PREFIX = "importerr#"
EVENT = "import_error"
BUNDLE_NAME = "dags"
BATCH = 1000
"""Files per deploy that get an error of their own; the rest share the last one."""
NO_FILE = "(deploy)"
"""The filename of problems that name no file (a bundle that cannot be built)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportError_:
    """One failing file of the last deploy (``ImportError`` is a builtin)."""

    import_error_id: int
    timestamp: dt.datetime
    filename: str
    bundle_name: str
    stack_trace: str


def per_file(problems: Sequence[Problem], root: str | None = None) -> dict[str, str]:
    """Problems grouped by file (relative to ``root`` when under it), each file's
    text the lines the CLI prints for it, in the order found."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        name = relative_path(problem.file, root) if problem.file else NO_FILE
        grouped.setdefault(name, []).append(str(problem))
    return {name: "\n".join(lines) for name, lines in grouped.items()}


def relative_path(path: str, root: str | Path | None) -> str:
    """``path`` relative to ``root`` when it is under it (as ``/``-separated text)."""
    if root is None:
        return path
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return path


class ImportErrors:
    def __init__(self, model: type[Any]):
        self.model = model

    def replace(self, tenant: str, errors: dict[str, str], now: dt.datetime) -> list[ImportError_]:
        """Make ``errors`` (filename -> text) the tenant's import errors; {} clears them."""
        key = PARTITION_PREFIX + tenant
        base = int(now.timestamp() * 1000) * BATCH
        items = list(errors.items())
        if len(items) > BATCH:
            rest = "\n".join(f"{name}: {text}" for name, text in items[BATCH - 1 :])
            items = [*items[: BATCH - 1], (items[BATCH - 1][0], rest)]
        written = []
        for index, (filename, text) in enumerate(items):
            item = self.model(
                key,
                base + index,
                when=now,
                event=EVENT,
                owner=None,
                extra=json.dumps({"filename": filename, "stack_trace": text}),
            )
            try:
                item.save(condition=self.model.eid.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code != CONDITION_FAILED:
                    raise
                # this deploy's recording ran before: the item is the same
            written.append(item.eid)
        keep = set(written)
        for old in self.model.query(key):
            if int(old.eid) not in keep:
                old.delete()
        return list(self.list(tenant).items)

    def _batch(self, tenant: str) -> list[ImportError_]:
        rows = list(self.model.query(PARTITION_PREFIX + tenant, consistent_read=True))
        if not rows:
            return []
        newest = max(int(r.eid) for r in rows) // BATCH
        return [_error(r) for r in rows if int(r.eid) // BATCH == newest]

    def list(
        self, tenant: str, *, limit: int = BATCH, offset: int = 0, order_by: str = "id"
    ) -> Page:
        """The last deploy's errors, sorted by ``order_by`` (a field, ``-`` for descending)."""
        errors = self._batch(tenant)
        field = order_by.lstrip("-")
        field = "import_error_id" if field == "id" else field
        errors.sort(key=lambda e: getattr(e, field), reverse=order_by.startswith("-"))
        return Page(errors[offset : offset + limit], len(errors))

    def get(self, tenant: str, import_error_id: int) -> ImportError_ | None:
        for error in self._batch(tenant):
            if error.import_error_id == import_error_id:
                return error
        return None

    def files(self, tenant: str) -> set[str]:
        """The filenames with an error, for the DAG list's ``has_import_errors``."""
        return {e.filename for e in self._batch(tenant)}


def _error(item: Any) -> ImportError_:
    extra = json.loads(item.extra or "{}")
    return ImportError_(
        import_error_id=int(item.eid),
        timestamp=item.when,
        filename=str(extra.get("filename", "")),
        bundle_name=BUNDLE_NAME,
        stack_trace=str(extra.get("stack_trace", "")),
    )


def import_errors_of(store: Any) -> ImportErrors | None:
    """The import errors beside a DynamoDB state store; None for the in-memory store."""
    model = getattr(getattr(store, "models", None), "event_log", None)
    return None if model is None else ImportErrors(model)


def remember_deploy(
    store: Any,
    tenant: str,
    problems: Sequence[Problem],
    now: dt.datetime,
    root: str | None = None,
) -> None:
    """Record a deploy's outcome: its failing files, or none after a success.

    Never raises: a refused deploy must still report its problems (and a
    successful one its DAGs) when the table cannot be written; it is logged."""
    errors = import_errors_of(store)
    if errors is None:
        return
    try:
        errors.replace(tenant, per_file(problems, root), now)
    except Exception:  # recording is a side note to the deploy: never its failure
        log.warning("could not record the import errors of tenant %s", tenant, exc_info=True)
