"""A DAG's runs by logical date, for depends_on_past (scheduler.past).

The DynamoDB side queries the runs table's ``by_logical`` index, which projects
what a ``DagRun`` needs, so finding the previous or next run is one Query of
``limit`` items whatever the DAG's history. The in-memory store filters its
runs with ``select_by_logical_date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from chalicelib.core.runs import DagRun
from chalicelib.store.dynamo_view import _run_from_item


def _one_bound(before: dt.datetime | None, after: dt.datetime | None) -> None:
    if (before is None) == (after is None):
        raise ValueError("give exactly one of before and after")


def select_by_logical_date(
    runs: Iterable[DagRun],
    *,
    before: dt.datetime | None = None,
    after: dt.datetime | None = None,
    limit: int = 1,
) -> list[DagRun]:
    """The in-memory answer of ``StateStore.runs_by_logical_date``."""
    _one_bound(before, after)
    dated = [r for r in runs if r.logical_date is not None]
    if before is not None:
        found = sorted(
            (r for r in dated if r.logical_date < before),  # type: ignore[operator]
            key=lambda r: (r.logical_date, r.run_id),
            reverse=True,
        )
    else:
        found = sorted(
            (r for r in dated if r.logical_date > after),  # type: ignore[operator]
            key=lambda r: (r.logical_date, r.run_id),
        )
    return found[:limit]


def query_by_logical_date(
    model: Any,
    dag_id: str,
    *,
    before: dt.datetime | None = None,
    after: dt.datetime | None = None,
    limit: int = 1,
) -> list[DagRun]:
    """The DynamoDB answer: one Query of the ``by_logical`` index."""
    _one_bound(before, after)
    if before is not None:
        condition, forward = model.logical < before, False
    else:
        condition, forward = model.logical > after, True
    items = model.by_logical.query(dag_id, condition, scan_index_forward=forward, limit=limit)
    return [_run_from_item(item) for item in items]
