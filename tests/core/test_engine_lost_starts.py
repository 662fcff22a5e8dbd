"""Reconciliation fails a try whose worker died between its claim and its first
heartbeat: the claim takes no heartbeat lease, so the reaper's index never held it."""

from __future__ import annotations

import datetime as dt

from chalicelib.core.engine import (
    HEARTBEAT_LOST,
    Reconcile,
    RetryDue,
    RunStarted,
    SetTaskState,
    StartTimer,
    decide,
)
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.local.run_state import InMemoryRunState
from tests.core.simulation import T0, make_spec, running_state

TIMEOUT = dt.timedelta(minutes=5)


def _running(spec_kwargs: dict | None = None) -> tuple[InMemoryRunState, DagSpec]:
    spec = make_spec({"a": ["b"]}, **(spec_kwargs or {}))
    state = running_state(spec)
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    state.transition("a", -1, TaskState.SCHEDULED, TaskState.QUEUED, queued_at=T0)
    state.transition("a", -1, TaskState.QUEUED, TaskState.RUNNING, start_date=T0)
    return state, spec


def test_a_try_that_never_beat_is_failed_after_the_heartbeat_timeout() -> None:
    state, spec = _running()
    reconcile = Reconcile(heartbeat_timeout=TIMEOUT)
    young = T0 + TIMEOUT - dt.timedelta(seconds=1)
    assert decide(spec, state.run, reconcile, state, young) == []  # its first beat may come
    late = T0 + TIMEOUT
    commands = decide(spec, state.run, reconcile, state, late)
    assert commands == [
        SetTaskState("a", -1, TaskState.RUNNING, TaskState.FAILED, 1, reason=HEARTBEAT_LOST)
    ]


def test_its_retry_is_used_as_a_stale_heartbeat_would_use_it() -> None:
    state, spec = _running({"a": {"retries": 1, "retry_delay": 10.0}})
    late = T0 + TIMEOUT
    commands = decide(spec, state.run, Reconcile(heartbeat_timeout=TIMEOUT), state, late)
    due = late + dt.timedelta(seconds=10)
    assert commands == [
        SetTaskState(
            "a", -1, TaskState.RUNNING, TaskState.UP_FOR_RETRY, 1,
            reason=HEARTBEAT_LOST, next_try_at=due,
        ),
        StartTimer(RetryDue("a", -1), due),
    ]  # fmt: skip


def test_a_try_that_beat_is_left_to_the_reaper() -> None:
    state, spec = _running()
    state.instances[("a", -1)] = state.instances[("a", -1)].evolve(
        last_heartbeat_at=T0 + dt.timedelta(seconds=30)
    )
    late = T0 + dt.timedelta(hours=1)
    assert decide(spec, state.run, Reconcile(heartbeat_timeout=TIMEOUT), state, late) == []


def test_without_a_heartbeat_timeout_reconciliation_fails_nothing() -> None:
    """Only the tick's stall net knows the timeout; a reconcile after a clear does not reap."""
    state, spec = _running()
    assert decide(spec, state.run, Reconcile(), state, T0 + dt.timedelta(hours=1)) == []
