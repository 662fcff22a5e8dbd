"""Turns events that reach the scheduler queue (S3 uploads, custom events on the
Slipstream bus) into runs of the DAGs whose triggers match them.

Routes (DAG id -> event patterns) are written by ``slipstream dags deploy``
next to the bundles and cached here for a minute, so an event costs one
pattern match per event-triggered DAG, not a read per DAG.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.core.assets import AssetError, normalize_uri
from chalicelib.core.event_matching import matches
from chalicelib.core.runs import RunType
from chalicelib.scheduler.sensor_wakeups import created_object
from chalicelib.scheduler.service import Scheduler

if TYPE_CHECKING:
    from chalicelib.scheduler.assets import AssetService
    from chalicelib.scheduler.sensor_wakeups import SensorWakeups

log = logging.getLogger("slipstream.scheduler")

ROUTES_TTL = dt.timedelta(seconds=60)


def s3_asset_uri(event: Mapping[str, Any]) -> str | None:
    """``s3://bucket/key`` of an S3 "Object Created" event (normalized), else None."""
    found = created_object(event)
    if found is None:
        return None
    try:
        return normalize_uri(f"s3://{found[0]}/{found[1]}")
    except AssetError:
        return None


def _event_time(event: Mapping[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


class JsonDocuments(Protocol):
    def get_json(self, key: str) -> Any: ...


class EventRouter:
    def __init__(
        self,
        scheduler: Scheduler,
        documents: JsonDocuments,
        routes_key: str,
        *,
        clock: Callable[[], dt.datetime],
        assets: AssetService | None = None,
        sensor_wakeups: SensorWakeups | None = None,
    ):
        self.assets = assets
        self.sensor_wakeups = sensor_wakeups
        self.scheduler = scheduler
        self.documents = documents
        self.routes_key = routes_key
        self.clock = clock
        self._routes: dict[str, list[dict[str, Any]]] = {}
        self._loaded_at: dt.datetime | None = None
        self._lock = threading.Lock()

    def routes(self) -> dict[str, list[dict[str, Any]]]:
        now = self.clock()
        with self._lock:
            if self._loaded_at is None or now - self._loaded_at >= ROUTES_TTL:
                self._routes = dict(self.documents.get_json(self.routes_key) or {})
                self._loaded_at = now
            return self._routes

    def route(self, event: Mapping[str, Any]) -> list[str]:
        """Create one run per matching, unpaused DAG; returns the run ids created.

        The run id is ``event__<event id>``, so a redelivered event creates nothing.
        """
        event_id = str(event.get("id") or "")
        if not event_id:
            raise ValueError("an EventBridge event without an id cannot start a run")
        created: list[str] = []
        matched = False
        for dag_id, patterns in sorted(self.routes().items()):
            if not any(matches(p, event) for p in patterns):
                continue
            matched = True
            record = self.scheduler.store.get_dag(dag_id)
            if record is None or record.paused or not record.active:
                continue
            run, new = self.scheduler.trigger(
                dag_id,
                conf={"event": dict(event)},
                run_type=RunType.EVENT,
                event_id=event_id,
            )
            if new:
                created.append(run.run_id)
                log.info("event %s started %s/%s", event_id, dag_id, run.run_id)
        if self.assets is not None:
            uri = s3_asset_uri(event)
            if uri is not None and self.assets.store.consumers(uri):
                matched = True
                emitted = self.assets.emit(
                    uri,
                    source_key=f"eventbridge:{event_id}",
                    timestamp=_event_time(event),
                    extra={"from": "s3", "event_id": event_id},
                )
                created.extend(run_id for _, run_id in emitted.runs)
        if self.sensor_wakeups is not None and self.sensor_wakeups.on_event(event):
            matched = True
        if not matched:
            # Not an error: S3 sends every upload of a watched bucket, and the bus
            # carries events no DAG is waiting for.
            log.info(
                "event %s (%s, %s) matches no DAG's trigger; ignored",
                event_id,
                event.get("source"),
                event.get("detail-type"),
            )
        return created
