"""The state machines are data; anything off the table raises a typed error."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.core.errors import IllegalTransition
from chalicelib.core.states import (
    FINISHED_TASK_STATES,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    DagRunState,
    TaskState,
    check_run_transition,
    check_task_transition,
)

# Sorted: frozenset order varies between processes, and xdist workers must agree.
ALLOWED = [(s, t) for s, targets in TASK_TRANSITIONS.items() for t in sorted(targets)]
FORBIDDEN = [(s, t) for s in TaskState for t in TaskState if t not in TASK_TRANSITIONS[s]]


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=str)
def test_allowed_task_transitions_pass(source: TaskState, target: TaskState) -> None:
    check_task_transition(source, target)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN, ids=str)
def test_forbidden_task_transitions_raise(source: TaskState, target: TaskState) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_task_transition(source, target, "etl.load")
    assert info.value.source == source.value
    assert info.value.target == target.value
    assert "etl.load" in str(info.value)


def test_key_task_paths() -> None:
    # the happy path, a retry loop and the engine's own decisions
    path = [
        TaskState.NONE,
        TaskState.SCHEDULED,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.UP_FOR_RETRY,
        TaskState.SCHEDULED,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.SUCCESS,
    ]
    for a, b in itertools.pairwise(path):
        check_task_transition(a, b)
    for target in (TaskState.SKIPPED, TaskState.UPSTREAM_FAILED):
        check_task_transition(TaskState.NONE, target)
    with pytest.raises(IllegalTransition):
        check_task_transition(TaskState.SUCCESS, TaskState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_task_transition(TaskState.NONE, TaskState.SUCCESS)  # it never ran
    # a worker claims a directly dispatched first try straight from NONE
    check_task_transition(TaskState.NONE, TaskState.RUNNING)


def test_finished_states_only_leave_by_clearing() -> None:
    for state in FINISHED_TASK_STATES:
        assert TASK_TRANSITIONS[state] == frozenset({TaskState.NONE})
        assert state.finished


def test_run_transitions() -> None:
    check_run_transition(DagRunState.QUEUED, DagRunState.RUNNING)
    check_run_transition(DagRunState.RUNNING, DagRunState.FAILED)
    with pytest.raises(IllegalTransition):
        check_run_transition(DagRunState.SUCCESS, DagRunState.RUNNING)
    assert set(RUN_TRANSITIONS) == set(DagRunState)


def test_state_names_are_airflows() -> None:
    assert {s.value for s in TaskState} == {
        "none",
        "scheduled",
        "queued",
        "running",
        "success",
        "failed",
        "up_for_retry",
        "up_for_reschedule",
        "upstream_failed",
        "skipped",
        "removed",
    }
    assert str(TaskState.UP_FOR_RETRY) == "up_for_retry"
