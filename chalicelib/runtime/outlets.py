"""A successful try's outlets become asset events (Airflow records them when the
task instance succeeds), and an asset-triggered run's tries see the events that
started it as ``triggering_asset_events``.

During the try, ``outlet_events`` lets the task attach ``extra`` to an outlet's
event (``outlet_events[asset].extra = {...}``) and resolve an alias outlet to
assets (``outlet_events[alias].add(Asset(...), extra={...})``), as in Airflow 3.
What it collected travels back with the try's result and is emitted only when
the try succeeded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.core.assets import AliasRef, AssetRef, normalize_uri


class AssetEmitter(Protocol):
    """What the worker needs of scheduler.assets.AssetService."""

    def emit(self, uri: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class OutletEvent:
    """One event a successful try emits: of ``asset``, through ``alias`` if any."""

    asset: AssetRef
    extra: dict[str, Any] = field(default_factory=dict)
    alias: str | None = None


class OutletEventAccessor:
    """``outlet_events[x]``: the ``extra`` of an asset's event, or an alias's ``add``."""

    def __init__(self, key: Any):
        self.key = key
        self.extra: dict[str, Any] = {}
        self.added: list[tuple[AssetRef, dict[str, Any]]] = []

    def add(self, asset: Any, extra: Mapping[str, Any] | None = None) -> None:
        """Resolve this alias to ``asset`` for this try (Airflow 3's ``add``)."""
        if not isinstance(self.key, AliasRef):
            raise TypeError("add() is for asset aliases; set .extra on an asset's events")
        to_condition = getattr(asset, "to_condition", None)
        ref = to_condition() if callable(to_condition) else None
        if not isinstance(ref, AssetRef):
            raise TypeError(f"outlet_events[alias].add() takes an Asset, got {asset!r}")
        self.added.append((ref, dict(extra or {})))


class OutletEventAccessors(Mapping[Any, OutletEventAccessor]):
    """``outlet_events``: one accessor per asset or alias, made on first use."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], OutletEventAccessor] = {}

    @staticmethod
    def _key(key: Any) -> tuple[tuple[str, str], AssetRef | AliasRef]:
        to_condition = getattr(key, "to_condition", None)
        ref = to_condition() if callable(to_condition) else None
        if isinstance(ref, AssetRef):
            return ("asset", ref.uri), ref
        if isinstance(ref, AliasRef):
            return ("alias", ref.name), ref
        if isinstance(key, str):
            ref = AssetRef.build(uri=key)
            return ("asset", ref.uri), ref
        raise KeyError(f"outlet_events takes an Asset or AssetAlias, got {key!r}")

    def __getitem__(self, key: Any) -> OutletEventAccessor:
        index, ref = self._key(key)
        if index not in self._by_key:
            self._by_key[index] = OutletEventAccessor(ref)
        return self._by_key[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(accessor.key for accessor in self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def events(self, outlets: list[Any]) -> tuple[OutletEvent, ...]:
        """What the task's outlets emit: each asset once, with the extra the task set;
        each alias as the assets added to it (nothing if none was)."""
        found: list[OutletEvent] = []
        for ref in outlets:
            if isinstance(ref, AssetRef):
                accessor = self._by_key.get(("asset", ref.uri))
                found.append(OutletEvent(ref, dict(accessor.extra) if accessor else {}))
            elif isinstance(ref, AliasRef):
                accessor = self._by_key.get(("alias", ref.name))
                for asset, extra in accessor.added if accessor else []:
                    found.append(OutletEvent(asset, extra, alias=ref.name))
        return tuple(found)


def emit_outlets(
    emitter: AssetEmitter,
    events: Sequence[OutletEvent],
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    when: dt.datetime,
) -> int:
    """Emit what the try collected; the try (dag, run, task, index, try), its end
    time and the alias name each event, so a repeated recording stores it once."""
    for event in events:
        emitter.emit(
            event.asset.uri,
            source_key=f"try:{dag_id}|{run_id}|{task_id}|{map_index}|{try_number}|{event.alias}",
            timestamp=when,
            extra=event.extra,
            source_dag_id=dag_id,
            source_run_id=run_id,
            source_task_id=task_id,
            source_map_index=map_index,
            alias=event.alias,
            asset=event.asset if event.alias else None,
        )
    return len(events)


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
        to_condition = getattr(key, "to_condition", None)
        ref = to_condition() if callable(to_condition) else None
        if isinstance(ref, AliasRef):
            return f"alias:{ref.name}"
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
