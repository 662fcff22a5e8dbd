"""A sensor's reschedule: the same try waits UP_FOR_RESCHEDULE on a timer, then
is queued again at the same try number; duplicate or early timers change nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core.engine import (
    FinishRun,
    Reconcile,
    RetryDue,
    RunStarted,
    ScheduleTask,
    SetTaskState,
    StartTimer,
    TaskFinished,
    TimeoutCheck,
    decide,
)
from chalicelib.core.errors import IllegalTransition
from chalicelib.core.progress import transition_delta
from chalicelib.core.states import DagRunState, TaskState, check_task_transition
from chalicelib.local.run_state import InMemoryRunState, StaleState
from tests.core.simulation import T0, make_spec, running_state

R = TaskState.UP_FOR_RESCHEDULE


def _run_first_poke(state: InMemoryRunState, spec, due: dt.datetime) -> None:
    """Start the run, run the sensor's first poke, reschedule it to ``due``."""
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    state.transition("sensor", -1, TaskState.SCHEDULED, TaskState.QUEUED)
    state.transition("sensor", -1, TaskState.QUEUED, TaskState.RUNNING, start_date=T0)
    state.transition("sensor", -1, TaskState.RUNNING, R, next_try_at=due, first_poke_at=T0)


def test_reschedule_keeps_the_try_number_and_the_first_poke() -> None:
    spec = make_spec({"sensor": ["after"]})
    state = running_state(spec)
    due = T0 + dt.timedelta(seconds=60)
    _run_first_poke(state, spec, due)
    commands = state.apply(decide(spec, state.run, RetryDue("sensor"), state, due), due)
    [poke] = [c for c in commands if isinstance(c, ScheduleTask)]
    assert (poke.try_number, poke.same_try, poke.expected, poke.expected_try) == (1, True, R, 1)
    ti = state.instance("sensor", -1)
    assert ti is not None
    assert (ti.state, ti.try_number, ti.first_poke_at) == (TaskState.SCHEDULED, 1, T0)


def test_an_early_or_duplicate_timer_starts_no_second_poke() -> None:
    spec = make_spec({"sensor": []})
    state = running_state(spec)
    due = T0 + dt.timedelta(seconds=60)
    _run_first_poke(state, spec, due)
    assert decide(spec, state.run, RetryDue("sensor"), state, T0) == [
        StartTimer(RetryDue("sensor"), due)
    ]
    first = decide(spec, state.run, RetryDue("sensor"), state, due)
    second = decide(spec, state.run, RetryDue("sensor"), state, due)
    state.apply(first, due)
    # the duplicate was decided from the same state: its guarded write loses
    with pytest.raises(StaleState):
        state.apply(second, due)
    assert decide(spec, state.run, RetryDue("sensor"), state, due) == []


def test_a_new_try_after_a_reschedule_forgets_the_first_poke() -> None:
    spec = make_spec({"sensor": []}, sensor={"retries": 1, "retry_delay": 5})
    state = running_state(spec)
    _run_first_poke(state, spec, T0)
    state.apply(decide(spec, state.run, RetryDue("sensor"), state, T0), T0)
    state.transition("sensor", -1, TaskState.SCHEDULED, TaskState.QUEUED)
    state.transition("sensor", -1, TaskState.QUEUED, TaskState.RUNNING)
    state.transition("sensor", -1, TaskState.RUNNING, TaskState.UP_FOR_RETRY, next_try_at=T0)
    [retry] = [
        c
        for c in state.apply(decide(spec, state.run, RetryDue("sensor"), state, T0), T0)
        if isinstance(c, ScheduleTask)
    ]
    assert (retry.try_number, retry.same_try) == (2, False)
    ti = state.instance("sensor", -1)
    assert ti is not None and ti.first_poke_at is None


def test_reconcile_rearms_a_lost_reschedule_timer_and_pokes_a_due_one() -> None:
    spec = make_spec({"sensor": []})
    state = running_state(spec)
    due = T0 + dt.timedelta(seconds=60)
    _run_first_poke(state, spec, due)
    assert StartTimer(RetryDue("sensor"), due) in decide(spec, state.run, Reconcile(), state, T0)
    later = [
        c for c in decide(spec, state.run, Reconcile(), state, due) if isinstance(c, ScheduleTask)
    ]
    assert [(c.task_id, c.try_number, c.same_try) for c in later] == [("sensor", 1, True)]


def test_dagrun_timeout_skips_a_rescheduled_sensor() -> None:
    spec = make_spec({"sensor": []}).model_copy(update={"dagrun_timeout": 60.0})
    state = running_state(spec)
    _run_first_poke(state, spec, T0 + dt.timedelta(hours=1))
    commands = decide(spec, state.run, TimeoutCheck(), state, T0 + dt.timedelta(seconds=61))
    assert (
        SetTaskState("sensor", -1, R, TaskState.SKIPPED, 1, reason="dagrun_timeout exceeded")
        in commands
    )
    assert FinishRun(DagRunState.FAILED, "dagrun_timeout exceeded") in commands


def test_a_rescheduled_sensor_is_unfinished_and_holds_back_downstream() -> None:
    spec = make_spec({"sensor": ["after"]})
    state = running_state(spec)
    _run_first_poke(state, spec, T0)
    assert transition_delta(spec, "sensor", TaskState.RUNNING, R).finished == 0
    assert state.progress.outcome is None
    assert decide(spec, state.run, TaskFinished("sensor"), state, T0) == []


def test_reschedule_transitions_are_guarded() -> None:
    check_task_transition(TaskState.RUNNING, R)
    for target in (TaskState.QUEUED, TaskState.SCHEDULED, TaskState.FAILED, TaskState.SKIPPED):
        check_task_transition(R, target)
    check_task_transition(R, TaskState.NONE)  # a clear
    with pytest.raises(IllegalTransition):
        check_task_transition(R, TaskState.SUCCESS)  # only a poke can succeed
    with pytest.raises(IllegalTransition):
        check_task_transition(TaskState.QUEUED, R)
    assert str(R) == "up_for_reschedule"


def test_an_upload_wakes_a_rescheduled_sensor_before_its_timer() -> None:
    spec = make_spec({"sensor": []})
    state = running_state(spec)
    due = T0 + dt.timedelta(minutes=30)
    _run_first_poke(state, spec, due)
    soon = T0 + dt.timedelta(seconds=5)
    wake = RetryDue("sensor", early=True)
    commands = state.apply(decide(spec, state.run, wake, state, soon), soon)
    [poke] = [c for c in commands if isinstance(c, ScheduleTask)]
    assert (poke.try_number, poke.same_try) == (1, True)
    # the wake-up again, and then the original timer: the sensor is no longer waiting
    assert decide(spec, state.run, wake, state, soon) == []
    assert decide(spec, state.run, RetryDue("sensor"), state, due) == []


def test_a_wake_up_never_cuts_a_retry_delay_short() -> None:
    spec = make_spec({"task": []}, task={"retries": 1, "retry_delay": 600})
    state = running_state(spec)
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    state.transition("task", -1, TaskState.SCHEDULED, TaskState.QUEUED)
    state.transition("task", -1, TaskState.QUEUED, TaskState.RUNNING, start_date=T0)
    due = T0 + dt.timedelta(minutes=10)
    state.transition("task", -1, TaskState.RUNNING, TaskState.UP_FOR_RETRY, next_try_at=due)
    assert decide(spec, state.run, RetryDue("task", early=True), state, T0) == []
    ti = state.instance("task", -1)
    assert ti is not None and ti.state is TaskState.UP_FOR_RETRY
