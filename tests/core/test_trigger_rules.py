"""Each of Airflow 3's thirteen trigger rules, one table row per upstream situation."""

from __future__ import annotations

import pytest

from chalicelib.core.states import TaskState
from chalicelib.core.trigger_rules import TriggerRule, UpstreamCounts, Verdict, evaluate

S, F, K, UF, N, R, RM = (
    TaskState.SUCCESS,
    TaskState.FAILED,
    TaskState.SKIPPED,
    TaskState.UPSTREAM_FAILED,
    TaskState.NONE,
    TaskState.RUNNING,
    TaskState.REMOVED,
)
RUN, WAIT, SKIP, UPF = Verdict.RUN, Verdict.WAIT, Verdict.SKIP, Verdict.UPSTREAM_FAILED
TR = TriggerRule

CASES = [
    # all_success: every upstream succeeded
    (TR.ALL_SUCCESS, [S, S], RUN),
    (TR.ALL_SUCCESS, [S, R], WAIT),
    (TR.ALL_SUCCESS, [S, F], UPF),
    (TR.ALL_SUCCESS, [R, UF], UPF),
    (TR.ALL_SUCCESS, [S, K], SKIP),
    (TR.ALL_SUCCESS, [K, F], UPF),  # failure wins over skip, as in Airflow
    (TR.ALL_SUCCESS, [S, RM], RUN),
    # all_failed: every upstream failed or upstream_failed
    (TR.ALL_FAILED, [F, UF], RUN),
    (TR.ALL_FAILED, [F, R], WAIT),
    (TR.ALL_FAILED, [F, S], SKIP),
    (TR.ALL_FAILED, [F, K], SKIP),
    # all_done: everything finished, whatever the outcome
    (TR.ALL_DONE, [S, F, K, UF], RUN),
    (TR.ALL_DONE, [S, R], WAIT),
    (TR.ALL_DONE, [N, F], WAIT),
    # all_skipped
    (TR.ALL_SKIPPED, [K, K], RUN),
    (TR.ALL_SKIPPED, [K, R], WAIT),
    (TR.ALL_SKIPPED, [K, S], SKIP),
    (TR.ALL_SKIPPED, [K, UF], SKIP),
    # one_success: runs as soon as one succeeded, without waiting for the rest
    (TR.ONE_SUCCESS, [S, R], RUN),
    (TR.ONE_SUCCESS, [R, R], WAIT),
    (TR.ONE_SUCCESS, [F, K], UPF),
    (TR.ONE_SUCCESS, [K, K], SKIP),
    (TR.ONE_SUCCESS, [F, R], WAIT),
    # one_failed: runs as soon as one failed
    (TR.ONE_FAILED, [F, R], RUN),
    (TR.ONE_FAILED, [UF, R], RUN),
    (TR.ONE_FAILED, [S, R], WAIT),
    (TR.ONE_FAILED, [S, K], SKIP),
    # one_done: one succeeded or failed
    (TR.ONE_DONE, [S, R], RUN),
    (TR.ONE_DONE, [F, R], RUN),
    (TR.ONE_DONE, [K, R], WAIT),
    (TR.ONE_DONE, [K, UF], SKIP),
    # none_failed: nothing failed; skips are fine
    (TR.NONE_FAILED, [S, K], RUN),
    (TR.NONE_FAILED, [K, K], RUN),
    (TR.NONE_FAILED, [S, R], WAIT),
    (TR.NONE_FAILED, [S, F], UPF),
    (TR.NONE_FAILED, [R, UF], UPF),
    # none_failed_min_one_success: as none_failed but needs one success
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, [S, K], RUN),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, [K, K], SKIP),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, [S, R], WAIT),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, [K, F], UPF),
    # none_skipped: nothing skipped
    (TR.NONE_SKIPPED, [S, F], RUN),
    (TR.NONE_SKIPPED, [S, R], WAIT),
    (TR.NONE_SKIPPED, [K, R], SKIP),
    # all_done_min_one_success (Airflow 3.1): every upstream done, one succeeded, none skipped
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [S, F], RUN),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [S, UF], RUN),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [S, S], RUN),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [S, RM], RUN),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [S, R], WAIT),  # unlike one_success, waits for the rest
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [F, N], WAIT),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [F, UF], UPF),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [F, RM], UPF),
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [S, K], SKIP),  # a skip is never "done" for this rule
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [K, R], SKIP),  # ... and skips at once
    (TR.ALL_DONE_MIN_ONE_SUCCESS, [K, K], SKIP),
    # always: no dependency at all
    (TR.ALWAYS, [R, N], RUN),
    (TR.ALWAYS, [F], RUN),
]


@pytest.mark.parametrize(("rule", "upstream", "expected"), CASES, ids=lambda v: str(v))
def test_rule_verdict(rule: TriggerRule, upstream: list[TaskState], expected: Verdict) -> None:
    counts = UpstreamCounts()
    for state in upstream:
        counts.add(state)
    assert evaluate(rule, counts) is expected


def test_every_rule_is_covered() -> None:
    assert {rule for rule, _, _ in CASES} | {TR.ALL_DONE_SETUP_SUCCESS} == set(TriggerRule)
    assert len(TriggerRule) == 13


_STATES = [S, F, K, UF, N, R, RM]


def _all_done_min_one_success_reference(upstream: list[TaskState]) -> Verdict:
    """The rule in words, as Airflow 3.1 documents it, for the exhaustive check."""
    if K in upstream:
        return SKIP
    if any(not s.finished for s in upstream):
        return WAIT
    return RUN if S in upstream else UPF


def test_all_done_min_one_success_on_every_upstream_of_up_to_three_tasks() -> None:
    import itertools

    for size in (1, 2, 3):
        for upstream in itertools.product(_STATES, repeat=size):
            counts = UpstreamCounts()
            for state in upstream:
                counts.add(state)
            expected = _all_done_min_one_success_reference(list(upstream))
            assert evaluate(TR.ALL_DONE_MIN_ONE_SUCCESS, counts) is expected, upstream


def _with_setup(plain: list[TaskState], setups: list[TaskState]) -> UpstreamCounts:
    counts = UpstreamCounts()
    for s in plain:
        counts.add(s)
    for s in setups:
        counts.add(s, is_setup=True)
    return counts


@pytest.mark.parametrize(
    ("plain", "setups", "expected"),
    [
        ([S, F], [S], RUN),  # all done and the setup succeeded
        ([S, R], [S], WAIT),
        ([S], [K], SKIP),  # every setup skipped
        ([S], [F], UPF),  # no setup succeeded
        ([S], [F, S], RUN),  # at least one setup ran
        ([F, K], [], RUN),  # no setup upstream: behaves as all_done
    ],
)
def test_all_done_setup_success(plain, setups, expected) -> None:
    assert evaluate(TR.ALL_DONE_SETUP_SUCCESS, _with_setup(plain, setups)) is expected


def test_task_without_upstream_runs_whatever_the_rule() -> None:
    for rule in TriggerRule:
        assert evaluate(rule, UpstreamCounts()) is RUN


def test_removed_upstream_counts_as_done_but_not_as_success() -> None:
    counts = UpstreamCounts()
    counts.add(RM)
    counts.add(R)
    assert evaluate(TR.ALL_DONE, counts) is WAIT
    counts = UpstreamCounts()
    counts.add(RM, times=3)
    assert evaluate(TR.ALL_DONE, counts) is RUN
