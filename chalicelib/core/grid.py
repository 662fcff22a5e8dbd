"""The grid's compact encoding: one letter per run for each task.

A grid of 10,000 tasks over 25 runs is 250,000 cells; as task-instance
objects that is tens of megabytes to send, parse and keep in a browser. As one
short string per task (a letter per run) it is a few hundred kilobytes, and
the browser keeps one string per row. Pure functions, so the API route and its
tests share them and the encoding is defined in one place.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from chalicelib.core.states import TaskState

STATE_CODES: dict[str, str] = {
    TaskState.SUCCESS.value: "S",
    TaskState.FAILED.value: "F",
    TaskState.RUNNING.value: "R",
    TaskState.QUEUED.value: "Q",
    TaskState.SCHEDULED.value: "C",
    TaskState.UP_FOR_RETRY.value: "Y",
    TaskState.UP_FOR_RESCHEDULE.value: "W",
    TaskState.UPSTREAM_FAILED.value: "U",
    TaskState.SKIPPED.value: "K",
    TaskState.REMOVED.value: "X",
    TaskState.NONE.value: "-",
}
"""Letter per state; ``-`` is Airflow's "no status" (no record yet, or state none)."""

ABSENT = "."
"""The task is not in that run's DAG version (it was added later or removed)."""

ATTENTION = [
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.UP_FOR_RETRY,
    TaskState.RUNNING,
    TaskState.UP_FOR_RESCHEDULE,
    TaskState.QUEUED,
    TaskState.SCHEDULED,
    TaskState.NONE,
    TaskState.REMOVED,
    TaskState.SKIPPED,
    TaskState.SUCCESS,
]
"""Which state a mapped task's cell shows: the first here that any instance is
in, so a single failed instance among a thousand is not hidden by successes."""

_RANK = {state.value: rank for rank, state in enumerate(ATTENTION)}


def code_of(state: str | None) -> str:
    """The letter of a state name (None and unknown names are "no status")."""
    return STATE_CODES.get(state or TaskState.NONE.value, STATE_CODES[TaskState.NONE.value])


def summary_state(counts: dict[str, int]) -> str:
    """The state a mapped task's cell shows for its instances' ``counts``."""
    present = [state for state, n in counts.items() if n > 0]
    if not present:
        return TaskState.NONE.value
    return min(present, key=lambda state: _RANK.get(state, len(_RANK)))


def count_states(states: Iterable[str | None]) -> dict[str, int]:
    """How many instances are in each state (no status as ``none``)."""
    counts: dict[str, int] = {}
    for state in states:
        name = state or TaskState.NONE.value
        counts[name] = counts.get(name, 0) + 1
    return counts


# --- Rows and windows --------------------------------------------------------
# The grid is read a window of rows at a time (``task_offset``/``task_limit``),
# so a 10,000-task DAG costs the rows on screen, not 10,000 reads per run. The
# rows are the task ids in sorted order with a heading row before each task
# group's members (ids "group.task"); a folded group is one row and hides its
# members. Sorted ids keep a group's members contiguous, and the instances'
# sort key starts with the task id, so a window is one key range per run.

TASK = "t"
MAPPED = "m"
GROUP = "g"
"""An open group's heading: no states of its own (its members are the rows below)."""
FOLDED = "f"
"""A folded group: one row whose cells summarise every member."""


class GridRow(NamedTuple):
    kind: str
    id: str


def grid_rows(task_ids: list[str], mapped: set[str], folded: set[str]) -> list[GridRow]:
    """The grid's rows for sorted ``task_ids``: group headings, then members, depth first.

    Sorted ids come group by group, so a task in the same group as the one
    before it needs no look at its groups (10,000 tasks in 100 groups: 100 looks)."""
    rows: list[GridRow] = []
    seen: set[str] = set()
    last_group: str | None = None
    hidden = False
    for task_id in task_ids:
        group = task_id.rpartition(".")[0]
        if group != last_group:
            last_group = group
            hidden = False
            parts = task_id.split(".")
            for depth in range(1, len(parts)):
                prefix = ".".join(parts[:depth])
                if prefix not in seen:
                    seen.add(prefix)
                    rows.append(GridRow(FOLDED if prefix in folded else GROUP, prefix))
                if prefix in folded:
                    hidden = True
                    break
        if not hidden:
            rows.append(GridRow(MAPPED if task_id in mapped else TASK, task_id))
    return rows


def members(task_ids: list[str], group: str) -> list[str]:
    """The tasks of ``group`` in sorted ``task_ids`` (a contiguous slice: "." < "/");
    none when ``group`` names no task group."""
    return task_ids[bisect_left(task_ids, group + ".") : bisect_left(task_ids, group + "/")]


@dataclass
class GridWindow:
    """A window's cells: per row one letter per run (newest first), counts per run
    for mapped tasks and folded groups, and the expanded tasks' instance rows."""

    states: list[str] = field(default_factory=list)
    mapped: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    groups: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    instances: dict[str, list[str]] = field(default_factory=dict)


def fill_window(
    rows: list[GridRow],
    task_ids: list[str],
    versions: list[set[str]],
    columns: list[dict[tuple[str, int], str | None]],
    expand: Iterable[str],
) -> GridWindow:
    """The cells of ``rows`` for runs whose DAG versions hold ``versions`` (task ids)
    and whose stored instances are ``columns`` ((task id, map index) -> state)."""
    window = GridWindow()
    letters: dict[str, list[str]] = {row.id: [] for row in rows}
    expanded = {row.id for row in rows if row.kind == MAPPED} & set(expand)
    per_index: dict[str, list[dict[int, str]]] = {task_id: [] for task_id in expanded}
    for row in rows:
        if row.kind == MAPPED:
            window.mapped[row.id] = []
        elif row.kind == FOLDED:
            window.groups[row.id] = []
    for present, states in zip(versions, columns, strict=True):
        plain: dict[str, str | None] = {}
        indexed: dict[str, dict[int, str | None]] = {}
        for (task_id, index), state in states.items():
            if index < 0:
                plain[task_id] = state
            else:
                indexed.setdefault(task_id, {})[index] = state
        for row in rows:
            if row.kind == GROUP or (row.kind != FOLDED and row.id not in present):
                letters[row.id].append(ABSENT)
                if row.kind == MAPPED:
                    window.mapped[row.id].append({})
                continue
            if row.kind == FOLDED:
                counts: dict[str, int] = {}
                for task_id in members(task_ids, row.id):
                    if task_id in present:
                        found = indexed.get(task_id)
                        some = list(found.values()) if found else [plain.get(task_id)]
                        for name, n in count_states(some).items():
                            counts[name] = counts.get(name, 0) + n
                window.groups[row.id].append(counts)
                letters[row.id].append(code_of(summary_state(counts)) if counts else ABSENT)
            elif row.kind == MAPPED and indexed.get(row.id):
                counts = count_states(indexed[row.id].values())
                window.mapped[row.id].append(counts)
                letters[row.id].append(code_of(summary_state(counts)))
            else:  # a plain task, or a mapped one not expanded yet (its -1 record)
                letters[row.id].append(code_of(plain.get(row.id)))
                if row.kind == MAPPED:
                    window.mapped[row.id].append({})
        for task_id in expanded:
            found = indexed.get(task_id, {}) if task_id in present else {}
            per_index[task_id].append({i: code_of(s) for i, s in found.items()})
    for task_id, per_run in per_index.items():
        width = max((max(column, default=-1) for column in per_run), default=-1) + 1
        window.instances[task_id] = [
            "".join(column.get(i, ABSENT) for column in per_run) for i in range(width)
        ]
    window.states = ["".join(letters[row.id]) for row in rows]
    return window
