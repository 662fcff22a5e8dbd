"""The grid's read of one run: every task instance's key and state, nothing else.

One Query on the run's partition key of the task-instances table, asking only
for the sort key and the state, paged by DynamoDB (1 MB of items a page):
the cost follows the run's size, never the table's, and the answer is a few
bytes per instance rather than whole records.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store.models import instance_pk, split_instance_sk


def run_states(models: Any, dag_id: str, run_id: str) -> dict[tuple[str, int], str | None]:
    """(task_id, map_index) -> state name of every stored instance of one run."""
    model = models.task_instance
    states: dict[tuple[str, int], str | None] = {}
    for item in model.query(instance_pk(dag_id, run_id), attributes_to_get=["sk", "st"]):
        states[split_instance_sk(item.sk)] = item.st
    return states
