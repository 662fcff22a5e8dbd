"""DAG specs by (dag_id, version), cached for the life of a warm container.

Versions are immutable, so a cached spec is never stale; the cache only saves
the read (and the JSON parse) that every event would otherwise repeat.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.store.base import StateStore


class UnknownVersion(SlipstreamError):
    """A run names a DAG version the store does not have."""


class SpecCache:
    def __init__(self, store: StateStore, max_entries: int = 256):
        self._store = store
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], DagSpec] = OrderedDict()
        self._bundle_keys: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def get(self, dag_id: str, version: str) -> DagSpec:
        key = (dag_id, version)
        with self._lock:
            spec = self._entries.get(key)
            if spec is not None:
                self._entries.move_to_end(key)
                return spec
        record = self._store.get_dag_version(dag_id, version)
        if record is None:
            raise UnknownVersion(f"DAG {dag_id!r} has no version {version!r}")
        spec = DagSpec.from_json(record.spec_json)
        with self._lock:
            self._entries[key] = spec
            self._bundle_keys[key] = record.bundle_key
            while len(self._entries) > self._max:
                old, _ = self._entries.popitem(last=False)
                self._bundle_keys.pop(old, None)
        return spec

    def bundle_key(self, dag_id: str, version: str) -> str | None:
        self.get(dag_id, version)
        with self._lock:
            return self._bundle_keys.get((dag_id, version))

    def put(self, spec: DagSpec, version: str, bundle_key: str | None = None) -> None:
        """Seed the cache (the local runner and tests already hold the spec)."""
        with self._lock:
            self._entries[(spec.dag_id, version)] = spec
            self._bundle_keys[(spec.dag_id, version)] = bundle_key
