"""Scenario tests of decide(): propagation, branching, mapping, retries, timeouts."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core.engine import (
    MAX_MAP_LENGTH,
    QUEUED_TIMEOUT,
    ExpandTask,
    FinishRun,
    Reconcile,
    RequeueTask,
    RetryDue,
    RunStarted,
    ScheduleTask,
    SetTaskState,
    StartTimer,
    TaskFinished,
    TimeoutCheck,
    decide,
)
from chalicelib.core.spec import MappingSpec, MapSource
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.local.run_state import InMemoryRunState
from tests.core.simulation import (
    T0,
    Outcome,
    literal_mapping,
    make_spec,
    running_state,
    simulate,
    succeed,
    xcom_mapping,
)

S, F, K = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED


def fail(*names: str):
    def outcome(task: str, _i: int, _t: int) -> Outcome:
        return Outcome(F if task in names else S)

    return outcome


def test_chain_runs_in_order() -> None:
    spec = make_spec({"a": ["b"], "b": ["c"]})
    res = simulate(spec)
    assert res.run_state is DagRunState.SUCCESS
    assert [t for t, _, _ in res.schedule_log] == ["a", "b", "c"]
    assert res.violations == []


def test_failure_propagates_upstream_failed_and_fails_run() -> None:
    spec = make_spec({"a": ["b"], "b": ["c"], "x": ["c"]})
    res = simulate(spec, fail("a"))
    assert res.states == {
        "a": "failed",
        "b": "upstream_failed",
        "c": "upstream_failed",
        "x": "success",
    }
    assert res.run_state is DagRunState.FAILED


def test_run_state_depends_on_leaves_only() -> None:
    # a failure absorbed by an all_done leaf leaves the run successful, as in Airflow
    spec = make_spec({"a": ["cleanup"]}, cleanup={"trigger_rule": TriggerRule.ALL_DONE})
    res = simulate(spec, fail("a"))
    assert res.states == {"a": "failed", "cleanup": "success"}
    assert res.run_state is DagRunState.SUCCESS


def test_one_success_starts_before_other_upstreams_finish() -> None:
    spec = make_spec(
        {"fast": ["join"], "slow": ["join"]}, join={"trigger_rule": TriggerRule.ONE_SUCCESS}
    )
    state = running_state(spec)
    cmds = state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    _start(state, cmds)
    state.transition("fast", -1, TaskState.RUNNING, S)
    cmds = decide(spec, state.run, TaskFinished("fast"), state, T0)
    assert [(c.task_id, c.try_number) for c in cmds if isinstance(c, ScheduleTask)] == [("join", 1)]


def test_duplicate_finished_event_schedules_nothing_twice() -> None:
    spec = make_spec({"a": ["b"]})
    state = running_state(spec)
    _start(state, state.apply(decide(spec, state.run, RunStarted(), state, T0), T0))
    state.transition("a", -1, TaskState.RUNNING, S)
    first = state.apply(decide(spec, state.run, TaskFinished("a"), state, T0), T0)
    assert [c.task_id for c in first if isinstance(c, ScheduleTask)] == ["b"]
    again = decide(spec, state.run, TaskFinished("a"), state, T0)
    assert again == []


def test_branch_skips_the_path_not_followed_and_join_runs() -> None:
    spec = make_spec(
        {"pick": ["left", "right"], "left": ["join"], "right": ["join"]},
        pick={"flow": "branch"},
        join={"trigger_rule": TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS},
    )

    def outcome(task: str, _i: int, _t: int) -> Outcome:
        if task == "pick":
            return Outcome(S, skip_downstream=("right",))
        return Outcome(S)

    res = simulate(spec, outcome)
    assert res.states == {
        "pick": "success",
        "left": "success",
        "right": "skipped",
        "join": "success",
    }
    assert res.violations == []


def test_branch_skip_propagates_through_all_success() -> None:
    spec = make_spec({"pick": ["left", "right"], "right": ["after_right"]}, pick={"flow": "branch"})
    res = simulate(
        spec, lambda t, i, n: Outcome(S, skip_downstream=("right",) if t == "pick" else None)
    )
    assert res.states["right"] == "skipped"
    assert res.states["after_right"] == "skipped"
    assert res.run_state is DagRunState.SUCCESS


def test_short_circuit_ignoring_downstream_rules_skips_everything_below() -> None:
    spec = make_spec(
        {"check": ["a"], "a": ["b"], "other": ["b"]},
        check={"flow": "short_circuit"},
        b={"trigger_rule": TriggerRule.ALL_DONE},
    )
    res = simulate(
        spec, lambda t, i, n: Outcome(S, skip_downstream=("a", "b") if t == "check" else None)
    )
    assert res.states == {"check": "success", "a": "skipped", "b": "skipped", "other": "success"}


def test_short_circuit_respecting_rules_lets_all_done_run() -> None:
    spec = make_spec(
        {"check": ["a"], "a": ["b"]},
        check={"flow": "short_circuit"},
        b={"trigger_rule": TriggerRule.ALL_DONE},
    )
    res = simulate(
        spec, lambda t, i, n: Outcome(S, skip_downstream=("a",) if t == "check" else None)
    )
    assert res.states == {"check": "success", "a": "skipped", "b": "success"}


def test_task_skipped_by_itself_propagates() -> None:
    spec = make_spec({"a": ["b", "c"]}, c={"trigger_rule": TriggerRule.ALL_SKIPPED})
    res = simulate(spec, lambda t, i, n: Outcome(K if t == "a" else S))
    assert res.states == {"a": "skipped", "b": "skipped", "c": "success"}


def test_retries_then_success() -> None:
    spec = make_spec({"a": ["b"]}, a={"retries": 2, "retry_delay": 30})
    res = simulate(spec, lambda t, i, n: Outcome(F if (t == "a" and n < 3) else S))
    assert res.states == {"a": "success", "b": "success"}
    assert res.tries == {"a": 3, "b": 1}
    assert [entry for entry in res.schedule_log if entry[0] == "a"] == [
        ("a", -1, 1),
        ("a", -1, 2),
        ("a", -1, 3),
    ]


def test_retries_exhausted() -> None:
    spec = make_spec({"a": ["b"]}, a={"retries": 1, "retry_delay": 5})
    res = simulate(spec, fail("a"))
    assert res.states == {"a": "failed", "b": "upstream_failed"}
    assert res.tries["a"] == 2


def test_non_retryable_failure_uses_one_try() -> None:
    spec = make_spec({"a": []}, a={"retries": 3})
    res = simulate(spec, lambda t, i, n: Outcome(F, non_retryable=True))
    assert res.tries == {"a": 1}
    assert res.states == {"a": "failed"}


def test_retry_timer_early_or_duplicate_is_harmless() -> None:
    spec = make_spec({"a": []}, a={"retries": 1, "retry_delay": 60})
    state = running_state(spec)
    _start(state, state.apply(decide(spec, state.run, RunStarted(), state, T0), T0))
    due = T0 + dt.timedelta(seconds=60)
    state.transition("a", -1, TaskState.RUNNING, TaskState.UP_FOR_RETRY, next_try_at=due)
    early = decide(spec, state.run, RetryDue("a"), state, T0)
    assert early == [StartTimer(RetryDue("a"), due)]
    on_time = state.apply(decide(spec, state.run, RetryDue("a"), state, due), due)
    assert [(c.task_id, c.try_number) for c in on_time if isinstance(c, ScheduleTask)] == [("a", 2)]
    assert decide(spec, state.run, RetryDue("a"), state, due) == []


def test_mapped_literal_fan_out_and_join() -> None:
    spec = make_spec({"m": ["join"]}, m={"mapping": literal_mapping(5)})
    res = simulate(spec)
    assert res.states == {**{f"m[{i}]": "success" for i in range(5)}, "join": "success"}
    assert res.violations == []


def test_mapped_over_upstream_result() -> None:
    spec = make_spec({"make": ["m"], "m": ["join"]}, m={"mapping": xcom_mapping("make")})
    res = simulate(spec, lambda t, i, n: Outcome(S, result_length=3 if t == "make" else None))
    assert sorted(res.states) == ["join", "m[0]", "m[1]", "m[2]", "make"]


def test_zero_length_map_skips_the_task() -> None:
    spec = make_spec({"make": ["m"], "m": ["join"]}, m={"mapping": xcom_mapping("make")})
    res = simulate(spec, lambda t, i, n: Outcome(S, result_length=0 if t == "make" else None))
    assert res.states == {"make": "success", "m": "skipped", "join": "skipped"}


def test_mapping_over_a_non_list_fails_the_mapped_task() -> None:
    spec = make_spec({"make": ["m"]}, m={"mapping": xcom_mapping("make")})
    res = simulate(spec)  # result_length None: the result was not a list or dict
    assert res.states == {"make": "success", "m": "failed"}
    assert res.run_state is DagRunState.FAILED


def test_one_failed_mapped_instance_fails_downstream() -> None:
    spec = make_spec({"m": ["join"]}, m={"mapping": literal_mapping(4)})
    res = simulate(spec, lambda t, i, n: Outcome(F if (t == "m" and i == 2) else S))
    assert res.states["m[2]"] == "failed"
    assert res.states["join"] == "upstream_failed"


def test_cross_product_mapping_length() -> None:
    mapping = MappingSpec(
        sources={"x": MapSource(literal_length=3), "y": MapSource(literal_length=4)}
    )
    spec = make_spec({"m": []}, m={"mapping": mapping})
    state = running_state(spec)
    cmds = decide(spec, state.run, RunStarted(), state, T0)
    assert ExpandTask("m", 12) in cmds
    assert sum(isinstance(c, ScheduleTask) for c in cmds) == 12


def test_mapping_over_mapped_results() -> None:
    spec = make_spec(
        {"first": ["second"]},
        first={"mapping": literal_mapping(3)},
        second={"mapping": xcom_mapping("first")},
    )
    res = simulate(spec)
    assert sorted(res.states) == [
        "first[0]",
        "first[1]",
        "first[2]",
        "second[0]",
        "second[1]",
        "second[2]",
    ]


def test_map_length_limit() -> None:
    spec = make_spec({"m": []}, m={"mapping": literal_mapping(MAX_MAP_LENGTH + 1)})
    res = simulate(spec)
    assert res.states == {"m": "failed"}


def test_large_map_is_allowed() -> None:
    spec = make_spec({"m": ["join"]}, m={"mapping": literal_mapping(100_000)})
    state = running_state(spec)
    cmds = decide(spec, state.run, RunStarted(), state, T0)
    assert ExpandTask("m", 100_000) in cmds


def test_always_task_starts_with_the_run() -> None:
    spec = make_spec({"a": ["watch"]}, watch={"trigger_rule": TriggerRule.ALWAYS})
    state = running_state(spec)
    cmds = decide(spec, state.run, RunStarted(), state, T0)
    assert {c.task_id for c in cmds if isinstance(c, ScheduleTask)} == {"a", "watch"}


def test_priority_follows_downstream_weight_rule() -> None:
    spec = make_spec({"a": ["b"], "c": []})
    state = running_state(spec)
    cmds = {c.task_id: c for c in decide(spec, state.run, RunStarted(), state, T0)}
    assert cmds["a"].priority == 2 and cmds["c"].priority == 1


def test_dagrun_timeout_fails_run_and_skips_unfinished() -> None:
    spec = make_spec({"a": ["b"]}).model_copy(update={"dagrun_timeout": 60.0})
    state = running_state(spec)
    _start(state, state.apply(decide(spec, state.run, RunStarted(), state, T0), T0))
    assert decide(spec, state.run, TimeoutCheck(), state, T0 + dt.timedelta(seconds=30)) == []
    cmds = decide(spec, state.run, TimeoutCheck(), state, T0 + dt.timedelta(seconds=61))
    assert FinishRun(DagRunState.FAILED, "dagrun_timeout exceeded") in cmds
    assert {(c.task_id, c.state) for c in cmds if isinstance(c, SetTaskState)} == {
        ("a", TaskState.SKIPPED),
        ("b", TaskState.SKIPPED),
    }


def test_execution_timeout_backstop_fails_stuck_try_with_retry() -> None:
    spec = make_spec({"a": []}, a={"execution_timeout": 10.0, "retries": 1, "retry_delay": 5})
    state = running_state(spec)
    _start(state, state.apply(decide(spec, state.run, RunStarted(), state, T0), T0))
    later = T0 + dt.timedelta(seconds=11)
    cmds = decide(spec, state.run, TimeoutCheck(), state, later)
    assert cmds[0] == SetTaskState(
        "a",
        -1,
        TaskState.RUNNING,
        TaskState.UP_FOR_RETRY,
        1,
        reason="execution_timeout exceeded",
        next_try_at=later + dt.timedelta(seconds=5),
    )
    assert isinstance(cmds[1], StartTimer)


def test_finished_run_ignores_events() -> None:
    spec = make_spec({"a": []})
    state = running_state(spec)
    done = state.run.with_state(DagRunState.SUCCESS)
    assert decide(spec, done, RunStarted(), state, T0) == []


def test_downstream_evaluation_reads_only_touched_tasks() -> None:
    # a wide DAG: finishing one task must not read the other 2,000
    edges = {f"t{i}": [f"u{i}"] for i in range(1000)}
    spec = make_spec(edges)
    state = running_state(spec)
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    for tid in ("t5",):
        state.transition(tid, -1, TaskState.SCHEDULED, TaskState.QUEUED)
        state.transition(tid, -1, TaskState.QUEUED, TaskState.RUNNING)
        state.transition(tid, -1, TaskState.RUNNING, S)
    seen: list[str] = []
    original = state.summaries

    def spy(task_ids):
        seen.extend(task_ids)
        return original(task_ids)

    state.summaries = spy  # type: ignore[method-assign]
    decide(spec, state.run, TaskFinished("t5"), state, T0)
    assert sorted(seen) == ["t5", "u5"]


def _start(state: InMemoryRunState, cmds) -> None:
    for c in cmds:
        if isinstance(c, ScheduleTask):
            state.transition(c.task_id, c.map_index, TaskState.SCHEDULED, TaskState.QUEUED)
            state.transition(
                c.task_id, c.map_index, TaskState.QUEUED, TaskState.RUNNING, start_date=T0
            )


@pytest.mark.parametrize("width", [1, 10, 100])
def test_fan_out_fan_in(width: int) -> None:
    edges = {"start": [f"w{i}" for i in range(width)], **{f"w{i}": ["end"] for i in range(width)}}
    res = simulate(make_spec(edges), succeed, seed=width)
    assert res.run_state is DagRunState.SUCCESS
    assert res.schedule_log[-1][0] == "end"


def test_reconcile_dispatches_again_a_try_queued_past_the_queued_timeout() -> None:
    spec = make_spec({"a": ["b"]})
    state = running_state(spec)
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    state.transition("a", -1, TaskState.SCHEDULED, TaskState.QUEUED, queued_at=T0)
    soon = T0 + QUEUED_TIMEOUT - dt.timedelta(seconds=1)
    assert not [c for c in decide(spec, state.run, Reconcile(), state, soon)]
    late = T0 + QUEUED_TIMEOUT
    commands = decide(spec, state.run, Reconcile(), state, late)
    assert commands == [RequeueTask("a", -1, 1, spec.task("a").executor)]
    # a try that started, or waits for a slot, is not lost
    state.transition("a", -1, TaskState.QUEUED, TaskState.RUNNING, start_date=late)
    assert decide(spec, state.run, Reconcile(), state, late + QUEUED_TIMEOUT) == []


def test_the_queued_timeout_is_a_setting_of_the_reconcile() -> None:
    """Airflow's task_queued_timeout is configurable; a stack whose workers
    start in milliseconds (the local one) may shorten it."""
    spec = make_spec({"a": ["b"]})
    state = running_state(spec)
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    state.transition("a", -1, TaskState.SCHEDULED, TaskState.QUEUED, queued_at=T0)
    short = Reconcile(queued_timeout=dt.timedelta(seconds=30))
    assert decide(spec, state.run, short, state, T0 + dt.timedelta(seconds=29)) == []
    commands = decide(spec, state.run, short, state, T0 + dt.timedelta(seconds=30))
    assert commands == [RequeueTask("a", -1, 1, spec.task("a").executor)]


def test_reconcile_schedules_a_mapped_instance_left_none_after_its_expansion() -> None:
    """A dispatcher that died between writing a map's expansion and scheduling
    one of its instances (or an operator's clear of that instance) leaves it
    NONE in an expanded map; reconciliation schedules it."""
    spec = make_spec({"src": ["m"], "m": ["end"]}, m={"mapping": literal_mapping(3)})
    state = running_state(spec)
    _start(state, state.apply(decide(spec, state.run, RunStarted(), state, T0), T0))
    state.transition("src", -1, TaskState.RUNNING, TaskState.SUCCESS, end_date=T0)
    expansion = decide(spec, state.run, TaskFinished("src", -1), state, T0)
    lost = [c for c in expansion if isinstance(c, ScheduleTask) and c.map_index == 1]
    assert len(lost) == 1
    state.apply([c for c in expansion if c not in lost], T0)

    commands = decide(spec, state.run, Reconcile(), state, T0)

    scheduled = [(c.task_id, c.map_index) for c in commands if isinstance(c, ScheduleTask)]
    assert scheduled == [("m", 1)]
