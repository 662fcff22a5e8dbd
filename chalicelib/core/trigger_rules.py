"""Airflow 3's thirteen trigger rules, evaluated over counts of upstream outcomes.

The evaluation mirrors Airflow's TriggerRuleDep: a rule either lets the task
run, decides it can never run (skipped or upstream_failed), or waits. Counts
are per task instance, so a mapped upstream counts once per mapped instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.core.states import TaskState


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALL_SKIPPED = "all_skipped"
    ALWAYS = "always"


class Verdict(StrEnum):
    RUN = "run"
    WAIT = "wait"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass
class UpstreamCounts:
    """Outcomes of a task's direct upstream instances.

    ``total`` counts every upstream instance that exists or is expected;
    an unexpanded mapped upstream counts as one unfinished instance.
    Setup counters only count upstream tasks flagged ``is_setup``.
    """

    total: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0
    setup_total: int = 0
    setup_success: int = 0
    setup_skipped: int = 0

    def add(self, state: TaskState, *, is_setup: bool = False, times: int = 1) -> None:
        self.total += times
        if state is TaskState.SUCCESS:
            self.success += times
        elif state is TaskState.SKIPPED:
            self.skipped += times
        elif state is TaskState.FAILED:
            self.failed += times
        elif state is TaskState.UPSTREAM_FAILED:
            self.upstream_failed += times
        elif state is TaskState.REMOVED:
            self.removed += times
        if is_setup:
            self.setup_total += times
            if state is TaskState.SUCCESS:
                self.setup_success += times
            elif state is TaskState.SKIPPED:
                self.setup_skipped += times

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total


def evaluate(rule: TriggerRule, c: UpstreamCounts) -> Verdict:
    """Decide what a task waiting on its upstream should do now.

    A task without upstream always runs. Removed instances count as done and,
    as in Airflow, are ignored by the success and failure tallies.
    """
    if c.total == 0 or rule is TriggerRule.ALWAYS:
        return Verdict.RUN
    failures = c.failed + c.upstream_failed
    effective = c.total - c.removed
    done = c.all_done
    R = TriggerRule
    if rule is R.ALL_SUCCESS:
        if failures:
            return Verdict.UPSTREAM_FAILED
        if c.skipped:
            return Verdict.SKIP
        return Verdict.RUN if c.success >= effective else Verdict.WAIT
    if rule is R.ALL_FAILED:
        if c.success or c.skipped:
            return Verdict.SKIP
        return Verdict.RUN if failures >= effective else Verdict.WAIT
    if rule is R.ALL_DONE:
        return Verdict.RUN if done else Verdict.WAIT
    if rule is R.ALL_DONE_SETUP_SUCCESS:
        if not done:
            return Verdict.WAIT
        if c.setup_total and c.setup_skipped >= c.setup_total:
            return Verdict.SKIP
        if c.setup_total and c.setup_success == 0:
            return Verdict.UPSTREAM_FAILED
        return Verdict.RUN
    if rule is R.ALL_DONE_MIN_ONE_SUCCESS:
        # As Airflow 3.1's TriggerRuleDep: a skipped upstream is never "done" for this
        # rule, so one skip skips the task at once; otherwise it waits for every
        # upstream and runs only if at least one of them succeeded.
        if c.skipped:
            return Verdict.SKIP
        if not done:
            return Verdict.WAIT
        return Verdict.RUN if c.success else Verdict.UPSTREAM_FAILED
    if rule is R.ALL_SKIPPED:
        if c.success or failures:
            return Verdict.SKIP
        return Verdict.RUN if c.skipped >= effective else Verdict.WAIT
    if rule is R.ONE_SUCCESS:
        if c.success:
            return Verdict.RUN
        if done:
            return Verdict.SKIP if c.skipped >= c.done else Verdict.UPSTREAM_FAILED
        return Verdict.WAIT
    if rule is R.ONE_FAILED:
        if failures:
            return Verdict.RUN
        return Verdict.SKIP if done else Verdict.WAIT
    if rule is R.ONE_DONE:
        if c.success or c.failed:
            return Verdict.RUN
        return Verdict.SKIP if done else Verdict.WAIT
    if rule is R.NONE_FAILED:
        if failures:
            return Verdict.UPSTREAM_FAILED
        return Verdict.RUN if done else Verdict.WAIT
    if rule is R.NONE_FAILED_MIN_ONE_SUCCESS:
        if failures:
            return Verdict.UPSTREAM_FAILED
        if not done:
            return Verdict.WAIT
        return Verdict.RUN if c.success else Verdict.SKIP
    if rule is R.NONE_SKIPPED:
        if c.skipped:
            return Verdict.SKIP
        return Verdict.RUN if done else Verdict.WAIT
    raise AssertionError(f"unhandled trigger rule {rule}")  # pragma: no cover
