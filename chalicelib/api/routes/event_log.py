"""``/eventLogs``: who changed what through the API, in the caller's tenant."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.admin import EventLogCollection, EventLogQuery, EventLogResponse
from chalicelib.api.errors import BadRequest, NotFound
from chalicelib.api.routing import Call, route
from chalicelib.store.event_log import LoggedEvent

bp = Blueprint(__name__)
TAG = "EventLog"


def event_response(event: LoggedEvent) -> EventLogResponse:
    return EventLogResponse(
        event_log_id=event.event_log_id,
        when=event.when,
        dag_id=event.dag_id,
        task_id=event.task_id,
        run_id=event.run_id,
        map_index=event.map_index,
        try_number=event.try_number,
        event=event.event,
        owner=event.owner,
        extra=event.extra,
    )


@route(
    bp,
    "/eventLogs",
    "GET",
    role=Role.VIEWER,
    query=EventLogQuery,
    response=EventLogCollection,
    tag=TAG,
)
def get_event_logs(call: Call) -> EventLogCollection:
    """List the tenant's event log, oldest first (``order_by=-id`` for newest first)."""
    query: EventLogQuery = call.query
    if query.dag_id is not None or query.event is not None:
        keep_dag, keep_event = query.dag_id, query.event
        everything = deps.event_log().list(
            call.who.tenant, limit=10**9, offset=0, descending=query.order_by.startswith("-")
        )
        chosen = [
            e
            for e in everything.items
            if (keep_dag is None or e.dag_id == keep_dag)
            and (keep_event is None or e.event == keep_event)
        ]
        page = chosen[query.offset : query.offset + query.limit]
        return EventLogCollection(
            event_logs=[event_response(e) for e in page], total_entries=len(chosen)
        )
    page_ = deps.event_log().list(
        call.who.tenant,
        limit=query.limit,
        offset=query.offset,
        descending=query.order_by.startswith("-"),
    )
    return EventLogCollection(
        event_logs=[event_response(e) for e in page_.items], total_entries=page_.total
    )


@route(bp, "/eventLogs/{event_log_id}", "GET", role=Role.VIEWER, response=EventLogResponse, tag=TAG)
def get_event_log(call: Call) -> EventLogResponse:
    """Get one event log entry."""
    text = call.path["event_log_id"]
    if not text.isdigit():
        raise BadRequest(f"event_log_id must be an integer, not {text!r}")
    event = deps.event_log().get(call.who.tenant, int(text))
    if event is None:
        raise NotFound(f"The Event Log with id: `{text}` not found")
    return event_response(event)
