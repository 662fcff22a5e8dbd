"""Which tasks an operator's clear or mark reaches: the named ones and, when asked,
everything upstream or downstream of them (transitively, as Airflow's
``include_upstream`` / ``include_downstream`` do)."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.core.spec import DagSpec


def related_tasks(
    spec: DagSpec, task_ids: Iterable[str], *, upstream: bool, downstream: bool
) -> set[str]:
    chosen = set(task_ids)
    unknown = chosen - set(spec.tasks)
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))
    frontier = list(chosen)
    while frontier:
        task = spec.tasks[frontier.pop()]
        neighbours: list[str] = []
        if upstream:
            neighbours += task.upstream
        if downstream:
            neighbours += task.downstream
        for other in neighbours:
            if other not in chosen:
                chosen.add(other)
                frontier.append(other)
    return chosen
