"""``/assets``, ``/assets/events`` and a DAG's queued asset events (Airflow 3's shapes).

Assets are deployment-wide, as pools are: a URI names the same data whatever
tenant's DAG reads or writes it, so every viewer lists every asset and its
events, and a user of any tenant may post an event (which starts the runs of
every DAG scheduled on it). What an asset lists of DAGs (``scheduled_dags``,
``producing_tasks``) is limited to the caller's tenant. Lists read indexes:
assets by id (``listed``), events by id (``events``, or ``by_asset``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from chalice import Blueprint

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.assets import (
    AssetCollectionResponse,
    AssetEventCollectionResponse,
    AssetEventQuery,
    AssetEventResponse,
    AssetListQuery,
    AssetResponse,
    CreateAssetEventsBody,
    DagRunAssetReference,
    DagScheduleAssetReference,
    LastAssetEventResponse,
    QueuedEventCollectionResponse,
    QueuedEventResponse,
    TaskOutletAssetReference,
)
from chalicelib.api.errors import NotFound
from chalicelib.api.routes.common import visible_dag
from chalicelib.api.routing import Call, route
from chalicelib.core.assets import asset_id
from chalicelib.store.assets import AssetEvent, AssetRow, AssetStore
from chalicelib.store.catalog import tenant_of

bp = Blueprint(__name__)
TAG = "Asset"
EVERYTHING = 10**9


def _store() -> AssetStore:
    return AssetStore(wiring.state_store().models.asset)


def _mine(call: Call) -> Callable[[str], bool]:
    """Whether a DAG id is the caller's tenant's (read once per DAG per request)."""
    seen: dict[str, bool] = {}

    def check(dag_id: str) -> bool:
        if dag_id not in seen:
            record = deps.catalog().store.get_dag(dag_id)
            seen[dag_id] = record is not None and tenant_of(record) == call.who.tenant
        return seen[dag_id]

    return check


def _asset(row: AssetRow, store: AssetStore, mine: Callable[[str], bool]) -> AssetResponse:
    consumers, producers = store.references(row.id)
    last = None
    if row.last_event_id is not None:
        last = LastAssetEventResponse(id=row.last_event_id, timestamp=row.last_event_at)
    return AssetResponse(
        id=row.id,
        name=row.name,
        uri=row.uri,
        group=row.group,
        extra=row.extra,
        created_at=row.created_at,
        updated_at=row.updated_at,
        scheduled_dags=[
            DagScheduleAssetReference(
                dag_id=dag_id, created_at=row.created_at, updated_at=row.updated_at
            )
            for dag_id in consumers
            if mine(dag_id)
        ],
        producing_tasks=[
            TaskOutletAssetReference(
                dag_id=dag_id,
                task_id=task_id,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for dag_id, task_id in producers
            if mine(dag_id)
        ],
        last_asset_event=last,
    )


def _like(pattern: str | None, value: str) -> bool:
    """Airflow's ``*_pattern``: a case-insensitive substring (SQL ``%pattern%``)."""
    return pattern is None or pattern.lower() in value.lower()


@route(
    bp, "/assets", "GET", role=Role.VIEWER, query=AssetListQuery,
    response=AssetCollectionResponse, tag=TAG,
)  # fmt: skip
def get_assets(call: Call) -> AssetCollectionResponse:
    """List assets, by id."""
    query: AssetListQuery = call.query
    store, mine = _store(), _mine(call)
    descending = query.order_by.startswith("-")
    if query.name_pattern is None and query.uri_pattern is None:
        page = store.list_assets(limit=query.limit, offset=query.offset, descending=descending)
        rows, total = page.items, page.total
    else:  # filters read on past the page to count what matches
        every = store.list_assets(limit=EVERYTHING, offset=0, descending=descending).items
        kept = [
            r
            for r in every
            if _like(query.name_pattern, r.name) and _like(query.uri_pattern, r.uri)
        ]
        rows, total = kept[query.offset : query.offset + query.limit], len(kept)
    return AssetCollectionResponse(
        assets=[_asset(row, store, mine) for row in rows], total_entries=total
    )


def _asset_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise NotFound(f"The Asset with ID: `{text[:100]}` was not found") from None


@route(bp, "/assets/{asset_id}", "GET", role=Role.VIEWER, response=AssetResponse, tag=TAG)
def get_asset(call: Call) -> AssetResponse:
    """Get one asset, with the caller's DAGs scheduled on it and producing it."""
    aid = _asset_id(call.path["asset_id"])
    store = _store()
    row = store.get_asset(aid) if 0 <= aid < 2**63 else None
    if row is None:
        raise NotFound(f"The Asset with ID: `{aid}` was not found")
    return _asset(row, store, _mine(call))


def _event(event: AssetEvent, row: AssetRow | None) -> AssetEventResponse:
    return AssetEventResponse(
        id=event.id,
        asset_id=event.asset_id,
        uri=event.uri,
        name=row.name if row is not None else event.uri,
        group=row.group if row is not None else None,
        extra=event.extra,
        source_dag_id=event.source_dag_id,
        source_task_id=event.source_task_id,
        source_run_id=event.source_run_id,
        source_map_index=event.source_map_index,
        created_dagruns=[],
        timestamp=event.timestamp,
    )


@route(
    bp, "/assets/events", "GET", role=Role.VIEWER, query=AssetEventQuery,
    response=AssetEventCollectionResponse, tag=TAG,
)  # fmt: skip
def get_asset_events(call: Call) -> AssetEventCollectionResponse:
    """List asset events (ids sort by time, so both orders read the same index)."""
    query: AssetEventQuery = call.query
    store = _store()
    descending = query.order_by.startswith("-")
    filters = {
        "source_dag_id": query.source_dag_id,
        "source_task_id": query.source_task_id,
        "source_run_id": query.source_run_id,
        "source_map_index": query.source_map_index,
    }
    wanted = {k: v for k, v in filters.items() if v is not None}
    low, high = query.timestamp_gte, query.timestamp_lte

    def keep(event: AssetEvent) -> bool:
        if any(getattr(event, k) != v for k, v in wanted.items()):
            return False
        return (low is None or event.timestamp >= low) and (high is None or event.timestamp <= high)

    if not wanted and low is None and high is None:
        page = store.list_events(
            asset=query.asset_id, limit=query.limit, offset=query.offset, descending=descending
        )
        events, total = page.items, page.total
    else:
        every = store.list_events(
            asset=query.asset_id, limit=EVERYTHING, offset=0, descending=descending
        ).items
        kept = [e for e in every if keep(e)]
        events, total = kept[query.offset : query.offset + query.limit], len(kept)
    rows: dict[int, AssetRow | None] = {}
    for event in events:
        if event.asset_id not in rows:
            rows[event.asset_id] = store.get_asset(event.asset_id)
    return AssetEventCollectionResponse(
        asset_events=[_event(e, rows[e.asset_id]) for e in events], total_entries=total
    )


@route(
    bp, "/assets/events", "POST", role=Role.USER, body=CreateAssetEventsBody,
    response=AssetEventResponse, tag=TAG,
)  # fmt: skip
def create_asset_event(call: Call) -> AssetEventResponse:
    """Record an asset event from outside; DAGs scheduled on the asset may start."""
    body: CreateAssetEventsBody = call.body
    store = _store()
    row = store.get_asset(body.asset_id) if 0 <= body.asset_id < 2**63 else None
    if row is None:
        raise NotFound(f"Asset with ID: `{body.asset_id}` was not found")
    emitted = wiring.asset_service().emit(
        row.uri,
        source_key=f"api:{uuid.uuid4().hex}",  # every POST is an event of its own, as in Airflow
        extra={**body.extra, "from_rest_api": True},
    )
    response = _event(emitted.event, row)
    for dag_id, run_id in emitted.runs:
        run = deps.catalog().get_run(dag_id, run_id)
        if run is not None and _mine(call)(dag_id):
            response.created_dagruns.append(
                DagRunAssetReference(
                    run_id=run_id, dag_id=dag_id, logical_date=run.run.logical_date,
                    start_date=run.run.start_date or run.run.run_after, state=run.run.state.value,
                    data_interval_start=run.run.data_interval_start,
                    data_interval_end=run.run.data_interval_end,
                )
            )  # fmt: skip
    return response


@route(
    bp, "/dags/{dag_id}/assets/queuedEvents", "GET", role=Role.VIEWER,
    response=QueuedEventCollectionResponse, tag=TAG,
)  # fmt: skip
def get_dag_asset_queued_events(call: Call) -> QueuedEventCollectionResponse:
    """The asset events a DAG has queued, one entry per asset (Airflow's AssetDagRunQueue)."""
    record = visible_dag(call, call.path["dag_id"])
    queued = _store().queued(record.dag_id)
    name = record.dag_id
    entries = [
        QueuedEventResponse(
            dag_id=record.dag_id,
            asset_id=asset_id(uri),
            created_at=_time_of(min(ids)),
            dag_display_name=name,
        )
        for uri, ids in sorted(queued.items())
        if not uri.startswith("alias:")
    ]
    return QueuedEventCollectionResponse(queued_events=entries, total_entries=len(entries))


def _time_of(event_id: int) -> dt.datetime:
    """An event id's time: its microsecond since the epoch times 1,000 (store.assets)."""
    return dt.datetime.fromtimestamp(event_id // 1000 / 1_000_000, tz=dt.UTC)
