"""Which tasks an operator's clear or mark reaches: the named ones and, when asked,
everything upstream or downstream of them (transitively, as Airflow's
``include_upstream`` / ``include_downstream`` do)."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.core.setup_teardown import clear_extras
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


def tasks_to_clear(
    spec: DagSpec, task_ids: Iterable[str], *, upstream: bool, downstream: bool
) -> set[str]:
    """``related_tasks`` plus what Airflow's clear takes along for setups and
    teardowns: a task in a setup's scope brings its setups and their teardowns,
    a setup its teardowns (core.setup_teardown.clear_extras)."""
    named = set(task_ids)
    related = related_tasks(spec, named, upstream=upstream, downstream=downstream)
    if not any(t.is_setup for t in spec.tasks.values()):
        return related
    extra = clear_extras(
        spec.tasks, spec.setup_scopes, named, related, upstream=upstream, downstream=downstream
    )
    return related | extra
