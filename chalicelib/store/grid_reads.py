"""The grid's read of runs: every task instance's key and state, nothing else.

One Query per run on its partition key of the task-instances table, asking
only for the sort key and the state, paged by DynamoDB (1 MB of items a page):
the cost follows the shown runs' sizes, never the table's, and the answer is a
few bytes per instance rather than whole records. The runs' Queries go out a
few at a time: each is latency-bound (a 10,000-task run is two pages), so 25
runs cost a few round trips instead of fifty in a row.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.store.models import instance_pk, split_instance_sk

PARALLEL_QUERIES = 8
"""Queries in flight at once: enough to hide latency, far below any table's limits."""


def run_states(models: Any, dag_id: str, run_id: str) -> dict[tuple[str, int], str | None]:
    """(task_id, map_index) -> state name of every stored instance of one run."""
    model = models.task_instance
    states: dict[tuple[str, int], str | None] = {}
    for item in model.query(instance_pk(dag_id, run_id), attributes_to_get=["sk", "st"]):
        states[split_instance_sk(item.sk)] = item.st
    return states


def runs_states(
    models: Any, dag_id: str, run_ids: list[str]
) -> list[dict[tuple[str, int], str | None]]:
    """``run_states`` of each run, in the order of ``run_ids``."""
    if len(run_ids) <= 1:
        return [run_states(models, dag_id, run_id) for run_id in run_ids]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_QUERIES, len(run_ids))) as pool:
        return list(pool.map(lambda run_id: run_states(models, dag_id, run_id), run_ids))
