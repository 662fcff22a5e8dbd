"""How the ECS executor learns a run's tenant when its message does not say.

A worker message leaves its run snapshot out when the run's conf is too big
for ECS's 8 KB of overrides (``SNAPSHOT_CONF_BYTES``). The executor then reads
the run (one GetItem) before it lets a DAG's ``task_role_arn`` through, so a
big conf is no way around the per-tenant role check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalicelib.core.runs import DagRun

RunReader = Callable[[str, str], DagRun | None]
"""``(dag_id, run_id) -> the run or None``: ``StateStore.get_run``'s shape."""


class StoreRunReader:
    """``get_run`` of the stage's DynamoDB store, built on first use: the read is
    needed only for big-conf runs, so no handler pays for the store at import."""

    def __init__(self) -> None:
        self._store: Any = None
        self._lock = threading.Lock()

    def __call__(self, dag_id: str, run_id: str) -> DagRun | None:
        with self._lock:
            if self._store is None:
                from chalicelib.store.dynamodb import DynamoStateStore
                from chalicelib.store.models import build_models
                from chalicelib.store.settings import StoreSettings

                settings = StoreSettings()
                self._store = DynamoStateStore(settings, models=build_models(settings))
        run: DagRun | None = self._store.get_run(dag_id, run_id)
        return run
