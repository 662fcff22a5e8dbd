"""A successful try's outlets become asset events (Airflow records them when the
task instance succeeds), and an asset-triggered run's tries see the events that
started it as ``triggering_asset_events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from chalicelib.core.assets import AssetRef, normalize_uri


class AssetEmitter(Protocol):
    """What the worker needs of scheduler.assets.AssetService."""

    def emit(self, uri: str, **kwargs: Any) -> Any: ...


def emit_outlets(
    emitter: AssetEmitter,
    outlets: list[Any],
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    when: dt.datetime,
) -> int:
    """One event per asset outlet; the try (dag, run, task, index, try) and its end
    time name each event, so a repeated recording stores it once. Returns the count."""
    count = 0
    for ref in outlets:
        if not isinstance(ref, AssetRef):
            continue  # an alias emits only what the task adds to it (not built yet)
        emitter.emit(
            ref.uri,
            source_key=f"try:{dag_id}|{run_id}|{task_id}|{map_index}|{try_number}",
            timestamp=when,
            source_dag_id=dag_id,
            source_run_id=run_id,
            source_task_id=task_id,
            source_map_index=map_index,
        )
        count += 1
    return count


class TriggeringAssetEvents(Mapping[Any, list[Any]]):
    """``triggering_asset_events``: asset (an Asset, or its URI) -> its events.

    Read from the store the first time a task looks, so tries that never ask
    cost nothing. Events have Airflow's attributes (``extra``, ``timestamp``,
    ``source_dag_id``, ``source_run_id``, ``source_task_id``, ``source_map_index``,
    ``asset`` with ``uri``/``name``).
    """

    def __init__(self, load: Callable[[], dict[str, list[Any]]] | None = None):
        self._load = load
        self._events: dict[str, list[Any]] | None = None

    def _all(self) -> dict[str, list[Any]]:
        if self._events is None:
            self._events = dict(self._load()) if self._load is not None else {}
        return self._events

    @staticmethod
    def _key(key: Any) -> str:
        uri = getattr(key, "uri", key)
        return normalize_uri(uri) if isinstance(uri, str) else str(uri)

    def __getitem__(self, key: Any) -> list[Any]:
        return self._all()[self._key(key)]

    def __contains__(self, key: object) -> bool:
        return self._key(key) in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"TriggeringAssetEvents({self._all()!r})"


class EventView:
    """One event as task code reads it (Airflow's AssetEventResult attributes)."""

    def __init__(self, event: Any):
        self.id = event.id
        self.extra = event.extra
        self.timestamp = event.timestamp
        self.source_dag_id = event.source_dag_id
        self.source_run_id = event.source_run_id
        self.source_task_id = event.source_task_id
        self.source_map_index = event.source_map_index
        self.asset = _AssetView(event.uri)
        self.source_aliases: list[Any] = []

    def __repr__(self) -> str:
        return f"AssetEvent(uri={self.asset.uri!r}, timestamp={self.timestamp!r})"


class _AssetView:
    def __init__(self, uri: str):
        self.uri = uri
        self.name = uri

    def __repr__(self) -> str:
        return f"Asset(uri={self.uri!r})"
