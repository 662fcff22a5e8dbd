"""Asset events in, asset-triggered runs out (Airflow's AssetManager + the
scheduler's AssetDagRunQueue pass).

An event (a producing task's success, ``POST /api/v2/assets/events``, an S3
upload of a consumed ``s3://`` URI) is recorded once, queued for each DAG that
consumes its asset (the consumer index written at deploy), and each of those
DAGs is checked: when its condition (``core.assets.is_met``) holds, one run is
created with the queued events and they are consumed. The work is one Query for
the consumers plus, per consumer, a queue write, a queue Query and a DAG read.

Repeats are harmless: the event is a conditional put; queues are sets; the run
id is derived from the event ids it takes, so two checks that see the same
queue create one run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.core.assets import AssetRef, alias_key, asset_id, is_met, leaf_key, leaves
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.runs import RunType
from chalicelib.scheduler.service import Scheduler
from chalicelib.store.assets import AssetEvent, AssetStore, event_id

log = logging.getLogger("slipstream.scheduler")


@dataclass(frozen=True)
class Emitted:
    event: AssetEvent
    new: bool  # False: this event was recorded before (a redelivery)
    runs: list[tuple[str, str]]  # (dag_id, run_id) created because of it


class AssetService:
    def __init__(
        self, store: AssetStore, scheduler: Scheduler, *, clock: Callable[[], dt.datetime]
    ):
        self.store = store
        self.scheduler = scheduler
        self.clock = clock

    def emit(
        self,
        uri: str,
        *,
        source_key: str,
        timestamp: dt.datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        source_dag_id: str | None = None,
        source_run_id: str | None = None,
        source_task_id: str | None = None,
        source_map_index: int = -1,
        alias: str | None = None,
        asset: AssetRef | None = None,
    ) -> Emitted:
        """Record one event of ``uri`` (normalized) and start the runs it completes.

        ``source_key`` names the event's origin (a try, an S3 event id, an API
        request): the same key at the same ``timestamp`` is the same event.
        An event through an ``alias`` is queued for the DAGs scheduled on the
        alias too, and ``asset`` (known only at run time) gets its row.
        """
        when = (timestamp or self.clock()).astimezone(dt.UTC)
        event = AssetEvent(
            id=event_id(when, f"{uri}|{source_key}"),
            asset_id=asset_id(uri),
            uri=uri,
            timestamp=when,
            extra=dict(extra or {}),
            source_dag_id=source_dag_id,
            source_run_id=source_run_id,
            source_task_id=source_task_id,
            source_map_index=source_map_index,
        )
        if asset is not None:
            self.store.register([asset], when)
        new = self.store.record_event(event)
        runs: list[tuple[str, str]] = []
        # Queued again on a redelivery too: the first delivery may have stopped
        # between the event and the queues; queue sets make this a no-op otherwise.
        keys = [uri] if alias is None else [uri, alias_key(alias)]
        for key in keys:
            for dag_id in sorted(self.store.consumers(key)):
                record = self.scheduler.store.get_dag(dag_id)
                if record is None or record.paused or not record.active:
                    continue  # Airflow queues events only for unpaused DAGs
                self.store.enqueue(dag_id, key, event.id)
                try:
                    run_id = self.check(dag_id)
                except SlipstreamError as exc:
                    # One consumer's bad DAG (params without defaults) must not stop
                    # the others, nor fail the producer's try that emitted the event.
                    log.warning("asset event %s: %s not started: %s", event.id, dag_id, exc)
                    continue
                if run_id is not None:
                    runs.append((dag_id, run_id))
        return Emitted(event, new, runs)

    def check(self, dag_id: str) -> str | None:
        """Start a run when the DAG's queued events meet its condition; its run id."""
        record = self.scheduler.store.get_dag(dag_id)
        if record is None or not record.current_version or record.paused or not record.active:
            return None
        spec = self.scheduler.specs.get(dag_id, record.current_version)
        condition = spec.asset_condition
        if condition is None:
            return None
        queued = self.store.queued(dag_id)
        if not is_met(condition, set(queued)):
            return None
        wanted = {leaf_key(leaf) for leaf in leaves(condition)}
        taken = {key: ids for key, ids in queued.items() if key in wanted}
        ids = sorted(i for group in taken.values() for i in group)
        digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:12]
        latest = max(self.store.events(ids[-1:]).values(), key=lambda e: e.timestamp, default=None)
        when = latest.timestamp if latest is not None else self.clock()
        run_id = f"asset_triggered__{when.astimezone(dt.UTC).isoformat()}_{digest}"
        self.store.set_run_events(dag_id, run_id, taken)  # before the run: its tries read it
        run, created = self.scheduler.trigger(
            dag_id, run_type=RunType.ASSET_TRIGGERED, run_id=run_id, logical_date=when
        )
        self.store.consume(dag_id, taken)
        if created:
            log.info("assets %s started %s/%s", sorted(taken), dag_id, run.run_id)
        return run.run_id if created else None
