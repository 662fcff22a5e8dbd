"""``GET /api/v2/slipstream/dags``: one page of DAGs with each DAG's latest runs
and event triggers, in one answer (Airflow 3's UI reads the same from its
private ``GET /ui/dags?dag_runs_limit=``, whose ``latest_dag_runs`` this keeps).

The DAG list page used to ask ``/dags`` and then, per shown DAG, its runs and
its event triggers: 51 requests for 25 DAGs, each paying authentication and
the DAG row read again. Here the read per DAG is bounded: one Query of the
``dag-runs.by_dag`` index for at most ``dag_runs_limit`` runs, no count. The
triggers come from the DAG row's summary (written at deploy); only a DAG
deployed before the summary carried them has its spec read (cached per
version). The DAGs of a page are read eight at a time, on threads kept for
the next call (a Lambda container reuses them).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from chalice import Blueprint
from pydantic import Field

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import ApiModel
from chalicelib.api.datamodels.dag_runs import DagRunResponse
from chalicelib.api.datamodels.dags import DagListQuery, DagResponse
from chalicelib.api.routes.common import current_spec, summary_of
from chalicelib.api.routes.dag_runs import runs_page
from chalicelib.api.routes.dags import dag_response, import_error_files, listed_dags
from chalicelib.api.routes.slipstream import EventTriggerResponse
from chalicelib.api.routing import Call, route
from chalicelib.core.dag_summary import event_triggers
from chalicelib.store.base import DagRecord

bp = Blueprint(__name__)
TAG = "Slipstream"
PARALLEL_DAGS = 8
"""DAGs of a page read at once: enough to hide latency, far below any table's limits."""


class DagOverviewQuery(DagListQuery):
    dag_runs_limit: Annotated[int, Field(ge=0, le=25)] = 10


class DagWithLatestRuns(DagResponse):
    latest_dag_runs: list[DagRunResponse]
    event_triggers: list[EventTriggerResponse]


class DagOverviewCollection(ApiModel):
    dags: list[DagWithLatestRuns]
    total_entries: int


_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=PARALLEL_DAGS, thread_name_prefix="dags"))
    return _POOL[0]


def _overview(record: DagRecord, runs_limit: int, broken: set[str]) -> DagWithLatestRuns:
    runs = []
    if runs_limit:
        stored = deps.catalog().latest_runs(record.dag_id, runs_limit)
        runs = runs_page(stored, {record.dag_id: record})
    triggers = summary_of(record).get("event_triggers")
    if triggers is None:
        triggers = event_triggers(current_spec(record)) if record.current_version else []
    return DagWithLatestRuns(
        **dag_response(record, broken).model_dump(),
        latest_dag_runs=runs,
        event_triggers=[EventTriggerResponse(**t) for t in triggers],
    )


@route(
    bp,
    "/slipstream/dags",
    "GET",
    role=Role.VIEWER,
    query=DagOverviewQuery,
    response=DagOverviewCollection,
    tag=TAG,
)
def get_dag_overview(call: Call) -> DagOverviewCollection:
    """The DAG list of ``GET /dags`` (same filters, order and paging), each DAG with
    its newest ``dag_runs_limit`` runs (newest first) and its event triggers."""
    query: DagOverviewQuery = call.query
    page = listed_dags(call, query)
    limit = query.dag_runs_limit
    if not page.items:
        return DagOverviewCollection(dags=[], total_entries=page.total)
    # The first DAG on this thread: its read makes the runs table's AWS client,
    # which the pool's threads would otherwise each make at once on a cold start
    # (pynamodb makes one per table on first use; seconds here when eight race).
    broken = import_error_files(call)
    dags = [_overview(page.items[0], limit, broken)]
    dags += _pool().map(lambda record: _overview(record, limit, broken), page.items[1:])
    return DagOverviewCollection(dags=dags, total_entries=page.total)
