"""Wide fan-ins decided from counters instead of reading every upstream task.

A join over N distinct tasks (1 -> N -> 1) is evaluated each time one of them
finishes. Reading the N upstream instances every time costs O(N) reads per
completion and O(N^2) per run. Instead, for a join with more than
``WIDE_FAN_IN`` *counted* upstream tasks, the run keeps how many of them are
in each finished state (success, failed, upstream_failed, skipped, removed);
every write that moves a counted instance into, out of or between finished
states moves the join's counts with it, as a mapped task's tallies move.
The trigger rule is then evaluated from the counts (``UpstreamCounts``), and
only the join's other upstream tasks are read one by one.

Counted: an unmapped, normal-flow, non-setup upstream task that is not a
source of the join's own mapping. The others carry more than a state (a
branch's choice, a map's count, a setup flag, a result's length), so they
are read as before. Smaller joins keep reading their upstream tasks: one
batch read, and no entry on the run item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.core.map_sources import leaf_sources
from chalicelib.core.states import TaskState

if TYPE_CHECKING:
    from chalicelib.core.runs import TaskInstance
    from chalicelib.core.spec import TaskSpec

WIDE_FAN_IN = 16
"""A join with more counted upstream tasks than this is decided from counters."""

FanInCounts = Mapping[TaskState, int]
"""How many counted upstream tasks of one join are in each finished state."""

FanInMove = tuple[str, TaskState, int]
"""(join, finished state, +1 or -1): one step of a join's counts."""


@dataclass(frozen=True)
class FanIns:
    """The counted joins of a DAG (``DagSpec.fan_ins``, computed once per spec)."""

    counted: Mapping[str, frozenset[str]]  # join -> its counted upstream tasks
    individual: Mapping[str, tuple[str, ...]]  # join -> its upstream tasks read one by one
    joins_of: Mapping[str, tuple[str, ...]]  # counted task -> the joins counting it

    def is_wide(self, task_id: str) -> bool:
        return task_id in self.counted

    def moves(
        self, task_id: str, map_index: int, old: TaskState, new: TaskState
    ) -> tuple[FanInMove, ...]:
        """The count steps for one instance moving from ``old`` to ``new``."""
        joins = self.joins_of.get(task_id, ()) if map_index < 0 else ()
        if not joins or old is new:
            return ()
        steps: list[tuple[TaskState, int]] = []
        if old.finished:
            steps.append((old, -1))
        if new.finished:
            steps.append((new, 1))
        return tuple((join, state, step) for join in joins for state, step in steps)

    def count(self, instances: Iterable[TaskInstance]) -> dict[str, dict[TaskState, int]]:
        """Every join's counts rebuilt from the stored instances (``recount``)."""
        counts: dict[str, dict[TaskState, int]] = {join: {} for join in self.counted}
        for ti in instances:
            if ti.map_index >= 0 or not ti.state.finished:
                continue
            for join in self.joins_of.get(ti.task_id, ()):
                counts[join][ti.state] = counts[join].get(ti.state, 0) + 1
        return counts


def counted_upstream(join: TaskSpec, up: TaskSpec) -> bool:
    """Whether ``up``'s state is all ``join`` needs of it (so a count can stand for it)."""
    sources = set()
    if join.mapping is not None:
        sources = {s.xcom_task_id for s in leaf_sources(join.mapping.sources.values())}
    return (
        up.mapping is None and up.flow == "normal" and not up.is_setup and up.task_id not in sources
    )


def find_fan_ins(tasks: Mapping[str, TaskSpec], threshold: int | None = None) -> FanIns:
    limit = WIDE_FAN_IN if threshold is None else threshold
    counted: dict[str, frozenset[str]] = {}
    individual: dict[str, tuple[str, ...]] = {}
    joins_of: dict[str, list[str]] = {}
    for tid, task in tasks.items():
        ups = [u for u in task.upstream if u in tasks]
        mine = [u for u in ups if counted_upstream(task, tasks[u])]
        if len(mine) <= limit or not mine:
            continue
        counted[tid] = frozenset(mine)
        individual[tid] = tuple(u for u in task.upstream if u not in counted[tid])
        for up in mine:
            joins_of.setdefault(up, []).append(tid)
    return FanIns(counted, individual, {up: tuple(js) for up, js in joins_of.items()})


def counts_from_entry(entry: Mapping[str, object]) -> dict[TaskState, int]:
    """A join's counts from their stored form (state value -> number), zeros dropped."""
    found: dict[TaskState, int] = {}
    for key, value in entry.items():
        n = int(value)  # type: ignore[call-overload]
        if n:
            found[TaskState(key)] = n
    return found
