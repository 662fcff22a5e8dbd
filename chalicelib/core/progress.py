"""Run completion by counters instead of scans.

A run tracks how many task instances it has, how many have finished and how
many leaf instances failed. Every state change adjusts the counters (atomic
ADDs in DynamoDB), and whoever brings ``finished`` up to ``total`` finishes
the run. No event ever has to read every task of a run to know it is over.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core.spec import DagSpec
from chalicelib.core.states import FINISHED_TASK_STATES, DagRunState, TaskState

_LEAF_FAILURES = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})


@dataclass(frozen=True)
class RunProgress:
    total: int
    finished: int = 0
    failed_leaves: int = 0

    def __add__(self, other: RunProgress) -> RunProgress:
        return RunProgress(
            self.total + other.total,
            self.finished + other.finished,
            self.failed_leaves + other.failed_leaves,
        )

    @property
    def may_finish_run(self) -> bool:
        """Whether this change, as a delta, can bring ``finished`` up to ``total``.

        Only more finished instances or fewer instances (an empty map) can; a
        map that grows the run cannot, so its writer skips reading the counters.
        """
        return self.finished > 0 or self.total < 0

    @property
    def outcome(self) -> DagRunState | None:
        """Airflow's rule: failed if any leaf failed or upstream_failed, else success
        (leaves as ``DagSpec.run_state_leaves``: teardowns do not count by default)."""
        if self.finished < self.total:
            return None
        return DagRunState.FAILED if self.failed_leaves else DagRunState.SUCCESS


def initial_progress(spec: DagSpec) -> RunProgress:
    return RunProgress(total=len(spec.tasks))


def transition_delta(spec: DagSpec, task_id: str, old: TaskState, new: TaskState) -> RunProgress:
    """Counter change for one instance moving from ``old`` to ``new``."""
    was = old in FINISHED_TASK_STATES
    now = new in FINISHED_TASK_STATES
    finished = int(now) - int(was)
    failed = 0
    if task_id in spec.run_state_leaves:
        failed = int(new in _LEAF_FAILURES) - int(old in _LEAF_FAILURES)
    return RunProgress(0, finished, failed)


def expansion_delta(count: int) -> RunProgress:
    """A placeholder counted once becomes ``count`` instances."""
    return RunProgress(count - 1, 0, 0)
