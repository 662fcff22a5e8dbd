"""The grid's compact encoding: one letter per run for each task.

A grid of 10,000 tasks over 25 runs is 250,000 cells; as task-instance
objects that is tens of megabytes to send, parse and keep in a browser. As one
short string per task (a letter per run) it is a few hundred kilobytes, and
the browser keeps one string per row. Pure functions, so the API route and its
tests share them and the encoding is defined in one place.
"""

from __future__ import annotations

from collections.abc import Iterable

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
