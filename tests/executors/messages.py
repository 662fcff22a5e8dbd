"""Worker messages for executor tests."""

from __future__ import annotations

from chalicelib.core.messages import WorkerMessage


def message(task_id: str = "extract", *, map_index: int = -1, try_number: int = 1) -> WorkerMessage:
    return WorkerMessage(
        dag_id="etl",
        run_id="scheduled__2024-01-01T00:00:00+00:00",
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        version="v" * 64,
    )
