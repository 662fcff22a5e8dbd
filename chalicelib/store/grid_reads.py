"""The grid's read of runs: the shown task instances' keys and states, nothing else.

One Query per run on its partition key of the task-instances table, asking
only for the sort key and the state, paged by DynamoDB (1 MB of items a page).
The sort key starts with the task id (``task#index``, and "#" sorts before every
character a task id may hold), so the sorted task ids of the grid's window of
rows are one key range: a window of 40 rows of a 10,000-task DAG reads those
40 tasks' instances, never the run's 10,000. The runs' Queries go out a few at
a time: each is latency-bound, so 25 runs cost a few round trips, not 25.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.store.models import instance_pk, split_instance_sk

PARALLEL_QUERIES = 8
"""Queries in flight at once: enough to hide latency, far below any table's limits."""

Span = tuple[str, str]
"""The first and last task id (sorted) whose instances to read."""


def run_states(
    models: Any, dag_id: str, run_id: str, span: Span | None = None
) -> dict[tuple[str, int], str | None]:
    """(task_id, map_index) -> state name of the stored instances of one run
    (every one, or those of the tasks from ``span[0]`` to ``span[1]``)."""
    model = models.task_instance
    condition = None
    if span is not None:
        # "task#..." keys: from the first task's "#" to past the last one's ("$" > "#").
        condition = model.sk.between(f"{span[0]}#", f"{span[1]}$")
    states: dict[tuple[str, int], str | None] = {}
    for item in model.query(instance_pk(dag_id, run_id), condition, attributes_to_get=["sk", "st"]):
        states[split_instance_sk(item.sk)] = item.st
    return states


def runs_states(
    models: Any, dag_id: str, run_ids: list[str], span: Span | None = None
) -> list[dict[tuple[str, int], str | None]]:
    """``run_states`` of each run, in the order of ``run_ids``."""
    if len(run_ids) <= 1:
        return [run_states(models, dag_id, run_id, span) for run_id in run_ids]
    # The first Query on this thread: a process's first one builds the model's
    # botocore client (a second or more of loading service files), and threads
    # racing to it would each build one.
    first = run_states(models, dag_id, run_ids[0], span)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_QUERIES, len(run_ids) - 1)) as pool:
        rest = pool.map(lambda run_id: run_states(models, dag_id, run_id, span), run_ids[1:])
        return [first, *rest]
