"""Assets, their events, who consumes them, and each consumer's queued events.

One table (``<prefix>-<stage>-assets``), items told apart by key prefix:

    pk a#<asset id>   sk #              the asset (uri, name, group, extra); GSI ``listed``
    pk a#<asset id>   sk c#<dag id>     DAG consumes the asset (written at deploy)
    pk a#<asset id>   sk p#<dag>#<task> the task produces the asset (written at deploy)
    pk d#<dag id>     sk #              the (uri, sk) rows the DAG's deployed version has
    pk e#<event id>   sk #              one asset event; GSIs ``events`` and ``by_asset``
    pk q#<dag id>     sk <uri>          event ids queued for the DAG (Airflow's
                                        AssetDagRunQueue), a number set
    pk r#<dag id>#<run id>  sk #        the events an asset-triggered run consumed

So an event costs one Query of its asset's consumers and, per consumer, one
Query of that DAG's queue: proportional to the DAGs that consume the asset,
whatever the number of DAGs. Event ids are integers (as Airflow's) that sort
by time, derived from the event's time and its source, so the same event
recorded twice is one item (a conditional put). Queues are number sets:
adding an id twice is a no-op, and consuming removes only the ids consumed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import (
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.assets import AssetRef, asset_id

CONDITION_FAILED = "ConditionalCheckFailedException"
LISTED = "asset"
EVENTS = "ev"
BATCH = 100


def build_asset_model(table_name: str) -> type[Any]:
    """The assets table's pynamodb model (region/host are set by build_models)."""

    class ListedIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "listed"
            projection = AllProjection()

        lk = UnicodeAttribute(hash_key=True)
        aid = NumberAttribute(range_key=True)

    class EventsIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "events"
            projection = AllProjection()

        ek = UnicodeAttribute(hash_key=True)
        eid = NumberAttribute(range_key=True)

    class ByAssetIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_asset"
            projection = AllProjection()

        eaid = NumberAttribute(hash_key=True)
        eid = NumberAttribute(range_key=True)

    class AssetItemModel(Model):
        class Meta:
            table_name = ""

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        aid = NumberAttribute(null=True)
        lk = UnicodeAttribute(null=True)  # LISTED on asset rows only (sparse index)
        uri = UnicodeAttribute(null=True)
        name = UnicodeAttribute(null=True)
        grp = UnicodeAttribute(null=True)
        extra = UnicodeAttribute(null=True)  # JSON
        created = UTCDateTimeAttribute(null=True)
        updated = UTCDateTimeAttribute(null=True)
        ek = UnicodeAttribute(null=True)  # EVENTS on event rows only
        eid = NumberAttribute(null=True)
        eaid = NumberAttribute(null=True)  # the event's asset id
        ts = UTCDateTimeAttribute(null=True)
        sdag = UnicodeAttribute(null=True)
        srun = UnicodeAttribute(null=True)
        stask = UnicodeAttribute(null=True)
        smap = NumberAttribute(null=True)
        eids = NumberSetAttribute(null=True)  # a queue's event ids
        body = UnicodeAttribute(null=True)  # JSON: consumed URIs, a run's events
        listed = ListedIndex()
        events = EventsIndex()
        by_asset = ByAssetIndex()

    AssetItemModel.Meta.table_name = table_name
    return AssetItemModel


@dataclass(frozen=True)
class AssetRow:
    id: int
    uri: str
    name: str
    group: str
    extra: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    last_event_id: int | None = None
    last_event_at: dt.datetime | None = None


@dataclass(frozen=True)
class AssetEvent:
    """One asset event, with Airflow's source fields (None when it came from outside)."""

    id: int
    asset_id: int
    uri: str
    timestamp: dt.datetime
    extra: dict[str, Any] = field(default_factory=dict)
    source_dag_id: str | None = None
    source_run_id: str | None = None
    source_task_id: str | None = None
    source_map_index: int = -1


@dataclass(frozen=True)
class Page:
    """One page of a list and how many entries the whole list has."""

    items: list[Any]
    total: int


def event_id(when: dt.datetime, source_key: str) -> int:
    """Microsecond of the event times 1,000 plus three digits of its source's hash:
    sorts by time, and the same source at the same time gives the same id."""
    micros = int(when.timestamp() * 1_000_000)
    return micros * 1000 + int(hashlib.sha256(source_key.encode()).hexdigest(), 16) % 1000


class AssetStore:
    def __init__(self, model: type[Any]):
        self.model = model

    # ------------------------------------------------------------ deploy side
    def register(self, refs: Iterable[AssetRef], now: dt.datetime) -> None:
        """Create or refresh each asset's row (name, group, extra as last deployed)."""
        seen: dict[str, AssetRef] = {}
        for ref in refs:
            seen.setdefault(ref.uri, ref)
        for uri, ref in sorted(seen.items()):
            aid = asset_id(uri)
            existing = self._get(f"a#{aid}", "#")
            created = existing.created if existing is not None else now
            if existing is not None and (existing.name, existing.grp, existing.extra) == (
                ref.name,
                ref.group,
                json.dumps(ref.extra, sort_keys=True),
            ):
                continue
            self.model(
                f"a#{aid}", "#", aid=aid, lk=LISTED, uri=uri, name=ref.name, grp=ref.group,
                extra=json.dumps(ref.extra, sort_keys=True), created=created, updated=now,
            ).save()  # fmt: skip

    def set_dag_assets(
        self,
        dag_id: str,
        consumes: Sequence[str],
        produces: Sequence[tuple[str, str]] = (),
        now: dt.datetime | None = None,
    ) -> None:
        """Point the index at what the DAG's new version waits for (``c#<dag>``
        rows) and which of its tasks produce what (``p#<dag>#<task>`` rows).

        Rows the new version no longer has are deleted; re-running is harmless."""
        row = self._get(f"d#{dag_id}", "#")
        before = {tuple(p) for p in json.loads(row.body)} if row is not None and row.body else set()
        after = {(uri, f"c#{dag_id}") for uri in consumes}
        after |= {(uri, f"p#{dag_id}#{task_id}") for uri, task_id in produces}
        for uri, sk in sorted(after - before):
            self.model(f"a#{asset_id(uri)}", sk, uri=uri, created=now).save()
        if after != before or row is None:
            self.model(f"d#{dag_id}", "#", body=json.dumps(sorted(after))).save()
        for uri, sk in sorted(before - after):
            self.model(f"a#{asset_id(uri)}", sk).delete()

    def references(self, aid: int) -> tuple[list[str], list[tuple[str, str]]]:
        """(DAGs scheduled on the asset, (dag, task) producing it): one Query."""
        consumers: list[str] = []
        producers: list[tuple[str, str]] = []
        for item in self.model.query(f"a#{aid}", self.model.sk.between("c#", "p#~")):
            if item.sk.startswith("c#"):
                consumers.append(item.sk[2:])
            elif item.sk.startswith("p#"):
                dag_id, _, task_id = item.sk[2:].rpartition("#")
                producers.append((dag_id, task_id))
        return consumers, producers

    def consumers(self, uri: str) -> list[str]:
        """The DAG ids whose deployed version waits for ``uri``: one Query."""
        items = self.model.query(f"a#{asset_id(uri)}", self.model.sk.startswith("c#"))
        return [item.sk[2:] for item in items]

    def consumed_by(self, dag_id: str) -> list[str]:
        row = self._get(f"d#{dag_id}", "#")
        pairs = json.loads(row.body) if row is not None and row.body else []
        return sorted(uri for uri, sk in pairs if sk == f"c#{dag_id}")

    # ------------------------------------------------------------ events
    def record_event(self, event: AssetEvent) -> bool:
        """Store the event once; False when it was recorded before (a redelivery)."""
        item = self.model(
            f"e#{event.id}", "#", ek=EVENTS, eid=event.id, eaid=event.asset_id, uri=event.uri,
            ts=event.timestamp, extra=json.dumps(event.extra, sort_keys=True, default=str),
            sdag=event.source_dag_id, srun=event.source_run_id, stask=event.source_task_id,
            smap=event.source_map_index,
        )  # fmt: skip
        try:
            item.save(condition=self.model.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise
        self._note_latest(event)
        return True

    def _note_latest(self, event: AssetEvent) -> None:
        """Keep the asset row's latest event (Airflow's ``last_asset_event``); a
        row that does not exist is not created, an older event changes nothing."""
        item = self.model(f"a#{event.asset_id}", "#")
        try:
            item.update(
                actions=[self.model.eid.set(event.id), self.model.ts.set(event.timestamp)],
                condition=self.model.pk.exists()
                & (self.model.eid.does_not_exist() | (self.model.eid < event.id)),
            )
        except UpdateError as exc:
            if exc.cause_response_code != CONDITION_FAILED:
                raise

    def events(self, ids: Iterable[int]) -> dict[int, AssetEvent]:
        keys = [(f"e#{i}", "#") for i in sorted(set(ids))]
        found: dict[int, AssetEvent] = {}
        for start in range(0, len(keys), BATCH):
            for item in self.model.batch_get(keys[start : start + BATCH]):
                found[int(item.eid)] = _event(item)
        return found

    def list_events(self, *, asset: int | None, limit: int, offset: int, descending: bool) -> Page:
        """Events of every asset (``events`` index) or of one (``by_asset``), by id."""
        key: str | int = EVENTS if asset is None else asset
        index = self.model.events if asset is None else self.model.by_asset
        items = index.query(key, scan_index_forward=not descending, limit=offset + limit)
        page = [_event(item) for n, item in enumerate(items) if n >= offset][:limit]
        return Page(page, index.count(key))

    # ------------------------------------------------------------ queues
    def enqueue(self, dag_id: str, uri: str, eid: int) -> None:
        """Queue an event for a consumer; adding the same id again changes nothing."""
        self.model(f"q#{dag_id}", uri).update(actions=[self.model.eids.add({eid})])

    def queued(self, dag_id: str) -> dict[str, set[int]]:
        """The DAG's queued event ids per URI (alias keys included): one Query."""
        return {
            item.sk: {int(i) for i in item.eids}
            for item in self.model.query(f"q#{dag_id}")
            if item.eids
        }

    def consume(self, dag_id: str, taken: dict[str, set[int]]) -> None:
        """Remove exactly the ids a run took; ids queued meanwhile stay queued."""
        for uri, ids in sorted(taken.items()):
            item = self.model(f"q#{dag_id}", uri)
            item.update(actions=[self.model.eids.delete(ids)])
            try:
                item.delete(condition=self.model.eids.does_not_exist())
            except DeleteError as exc:
                if exc.cause_response_code != CONDITION_FAILED:
                    raise

    # ------------------------------------------------------------ triggered runs
    def set_run_events(self, dag_id: str, run_id: str, taken: dict[str, set[int]]) -> None:
        body = json.dumps({uri: sorted(ids) for uri, ids in sorted(taken.items())})
        self.model(f"r#{dag_id}#{run_id}", "#", body=body).save()

    def run_events(self, dag_id: str, run_id: str) -> dict[str, list[AssetEvent]]:
        """The events an asset-triggered run consumed, per URI, oldest first."""
        row = self._get(f"r#{dag_id}#{run_id}", "#")
        if row is None or not row.body:
            return {}
        taken: dict[str, list[int]] = json.loads(row.body)
        found = self.events(i for ids in taken.values() for i in ids)
        return {uri: [found[i] for i in sorted(ids) if i in found] for uri, ids in taken.items()}

    # ------------------------------------------------------------ assets
    def get_asset(self, aid: int) -> AssetRow | None:
        item = self._get(f"a#{aid}", "#")
        return None if item is None else _asset(item)

    def list_assets(self, *, limit: int, offset: int, descending: bool = False) -> Page:
        index = self.model.listed
        items = index.query(LISTED, scan_index_forward=not descending, limit=offset + limit)
        page = [_asset(item) for n, item in enumerate(items) if n >= offset][:limit]
        return Page(page, index.count(LISTED))

    def _get(self, pk: str, sk: str) -> Any:
        try:
            return self.model.get(pk, sk)
        except self.model.DoesNotExist:
            return None


def _asset(item: Any) -> AssetRow:
    return AssetRow(
        id=int(item.aid),
        uri=item.uri,
        name=item.name,
        group=item.grp,
        extra=json.loads(item.extra or "{}"),
        created_at=item.created,
        updated_at=item.updated,
        last_event_id=None if item.eid is None else int(item.eid),
        last_event_at=item.ts,
    )


def _event(item: Any) -> AssetEvent:
    return AssetEvent(
        id=int(item.eid),
        asset_id=int(item.eaid),
        uri=item.uri,
        timestamp=item.ts,
        extra=json.loads(item.extra or "{}"),
        source_dag_id=item.sdag,
        source_run_id=item.srun,
        source_task_id=item.stask,
        source_map_index=-1 if item.smap is None else int(item.smap),
    )
