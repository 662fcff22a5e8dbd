"""A mapped task held to a run-local limit runs through a window, not a counter.

Under max_active_tasks (or the task's max_active_tis_per_dagrun) every try of
a wide map used to take a slot from a counter in a transaction, wait in an
index while the counter was full, and give the slot back in a second
transaction: three times the writes of an unlimited map, and a longer
hand-off. When the only limits that bind a map count this run's tries, the
run itself can keep the map within them:

- the expansion starts indices ``0 .. W-1`` (``W``, the window, is what the
  limits leave for the map: max_active_tasks minus the tries of this run
  that can overlap the map, and at most max_active_tis_per_dagrun);
- the try whose outcome is the map's ``f``-th finished instance (the map's
  tally, which its settle moves once and answers with) starts index
  ``W + f - 1``.

So the indices started are always ``0 .. W + finished - 1``, and at most
``W`` of them are unfinished: the limit holds with no slot to take or give
back, and a worker that dies mid-try holds nothing to leak. A try that waits
for its retry (or its next poke) keeps its place in the window; Airflow
would give its slot to another try meanwhile (a deliberate difference,
docs/architecture.md). The window is chosen when the map expands and
stored with its count, so every later decision for the run uses the same one.

If the answer to a settle is lost, or an operator clears instances, an index
may go unstarted; reconciliation (a stalled run is read whole) starts the
lowest indices that never ran while fewer than ``W`` are unfinished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chalicelib.core.runs import TaskInstance
from chalicelib.core.slots import SlotClaim
from chalicelib.core.states import FINISHED_TASK_STATES, TaskState

_RUN_LOCAL = ("dagrun:", "runtask:")


def window_size(claims: Iterable[SlotClaim], count: int, bound: int) -> int | None:
    """The window for a map of ``count`` instances whose tries must make
    ``claims``; ``bound`` is how many tries of the run can be active while one
    of the map's is (its own ``count`` included, core.slots.task_width_bound).

    None when no limit binds, or when one counts tries beyond this run (a
    pool, max_active_tis_per_dag): those stay counters, shared across runs.
    """
    claims = list(claims)
    if not claims or any(not c.key.startswith(_RUN_LOCAL) for c in claims):
        return None
    others = bound - count  # tries of other tasks that can run alongside the map
    window = min(c.limit - others if c.key.startswith("dagrun:") else c.limit for c in claims)
    return window if window >= 1 else None


def finished_count(state_counts: Mapping[TaskState, int]) -> int:
    return sum(n for state, n in state_counts.items() if state in FINISHED_TASK_STATES)


def next_index(window: int, finished: int, count: int) -> int | None:
    """The index the map's ``finished``-th finished try starts, if any is left."""
    index = window + finished - 1
    return index if finished >= 1 and index < count else None


def admitted(window: int, unfinished: Iterable[TaskInstance]) -> set[int]:
    """Of a windowed map's unfinished instances, the NONE ones that may start
    now: the lowest, while fewer than ``window`` others are under way."""
    waiting: list[int] = []
    active = 0
    for ti in unfinished:
        if ti.state is TaskState.NONE:
            waiting.append(ti.map_index)
        else:
            active += 1
    return set(sorted(waiting)[: max(0, window - active)])
