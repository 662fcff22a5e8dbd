"""Wide joins decided from counters (core.fan_in) decide exactly as reads do.

The same DAG is run twice: with the default threshold (small joins read
their upstream tasks) and with every join counted (threshold 0). Every
trigger rule, branch, short-circuit, retry and map must end the same way.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.engine import RunStarted, ScheduleTask, SetTaskState, TaskFinished, decide
from chalicelib.core.fan_in import WIDE_FAN_IN, find_fan_ins
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.local.run_state import InMemoryRunState
from tests.core.simulation import literal_mapping, make_spec, running_state, simulate, xcom_mapping
from tests.core.test_engine_properties import outcome_for, random_dags

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
S, F, K, UF = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
WIDTH = WIDE_FAN_IN + 4


def with_threshold(spec: DagSpec, threshold: int) -> DagSpec:
    """A fresh copy of ``spec`` whose joins are counted above ``threshold``."""
    fresh = DagSpec.model_validate_json(spec.model_dump_json())
    fresh.__dict__["fan_ins"] = find_fan_ins(fresh.tasks, threshold)
    return fresh


def wide(rule: TriggerRule = TriggerRule.ALL_SUCCESS, width: int = WIDTH, **extra: dict) -> DagSpec:
    """start -> w0..w{width-1} -> join."""
    middle = [f"w{i}" for i in range(width)]
    edges: dict[str, list[str]] = {"start": middle, **{m: ["join"] for m in middle}}
    extra["join"] = {"trigger_rule": rule, **extra.get("join", {})}
    return make_spec(edges, **extra)


def test_only_joins_wider_than_the_threshold_are_counted() -> None:
    assert wide(width=WIDE_FAN_IN).fan_ins.counted == {}
    spec = wide()
    assert spec.fan_ins.counted == {"join": frozenset(f"w{i}" for i in range(WIDTH))}
    assert spec.fan_ins.individual == {"join": ()}
    assert spec.fan_ins.joins_of["w3"] == ("join",)


def test_branches_setups_maps_and_mapping_sources_are_read_not_counted() -> None:
    spec = wide(
        w0={"flow": "branch"},
        w1={"is_setup": True},
        w2={"mapping": literal_mapping(2)},
        join={"mapping": xcom_mapping("w3")},
    )
    fan_ins = find_fan_ins(spec.tasks, threshold=0)
    assert fan_ins.individual["join"] == ("w0", "w1", "w2", "w3")
    assert fan_ins.counted["join"] == frozenset(f"w{i}" for i in range(4, WIDTH))


def test_moves_follow_finished_states_only() -> None:
    fan_ins = wide().fan_ins
    assert fan_ins.moves("w1", -1, TaskState.RUNNING, S) == (("join", S, 1),)
    assert fan_ins.moves("w1", -1, TaskState.RUNNING, TaskState.UP_FOR_RETRY) == ()
    assert fan_ins.moves("w1", -1, F, TaskState.NONE) == (("join", F, -1),)  # a clear
    assert fan_ins.moves("w1", -1, F, S) == (("join", F, -1), ("join", S, 1))  # a mark
    assert fan_ins.moves("join", -1, TaskState.RUNNING, S) == ()  # counted by no join


def _finish(state: InMemoryRunState, tid: str, outcome: TaskState) -> None:
    if outcome in (K, UF):
        state.transition(tid, -1, TaskState.NONE, outcome)
        return
    state.transition(tid, -1, TaskState.NONE, TaskState.SCHEDULED)
    state.transition(tid, -1, TaskState.SCHEDULED, TaskState.QUEUED)
    state.transition(tid, -1, TaskState.QUEUED, TaskState.RUNNING)
    state.transition(tid, -1, TaskState.RUNNING, outcome)


def _join_decision(spec: DagSpec, outcomes: list[TaskState | None]) -> list:
    state = running_state(spec)
    _finish(state, "start", S)
    for i, outcome in enumerate(outcomes):
        if outcome is not None:
            _finish(state, f"w{i}", outcome)
    last = max(i for i, o in enumerate(outcomes) if o is not None)
    return decide(spec, state.run, TaskFinished(f"w{last}"), state, T0)


MIXES = {
    "all success": [S] * WIDTH,
    "all failed": [F] * WIDTH,
    "all skipped": [K] * WIDTH,
    "all upstream_failed": [UF] * WIDTH,
    "success and one failed": [S] * (WIDTH - 1) + [F],
    "success and one skipped": [K] + [S] * (WIDTH - 1),
    "failed and skipped": [F, K] * (WIDTH // 2),
    "one success, rest waiting": [S] + [None] * (WIDTH - 1),
    "one failed, rest waiting": [None] * (WIDTH - 1) + [F],
    "one skipped, rest waiting": [K] + [None] * (WIDTH - 1),
    "all but one success": [S] * (WIDTH - 1) + [None],
}


@pytest.mark.parametrize("rule", list(TriggerRule))
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_every_rule_decides_the_same_from_counts_as_from_reads(rule: TriggerRule, mix: str) -> None:
    counted = wide(rule)
    read = with_threshold(counted, 10 * WIDTH)
    assert counted.fan_ins.is_wide("join") and not read.fan_ins.is_wide("join")
    assert _join_decision(counted, MIXES[mix]) == _join_decision(read, MIXES[mix])


def test_a_completion_reads_the_join_and_its_counts_not_its_upstream_tasks() -> None:
    spec = wide(width=1000)
    state = running_state(spec)
    _finish(state, "start", S)
    _finish(state, "w5", S)
    seen: list[str] = []
    joins: list[str] = []
    summaries, fan_in = state.summaries, state.fan_in

    def spy_summaries(task_ids):
        seen.extend(task_ids)
        return summaries(task_ids)

    def spy_fan_in(join_ids):
        joins.extend(join_ids)
        return fan_in(join_ids)

    state.summaries = spy_summaries  # type: ignore[method-assign]
    state.fan_in = spy_fan_in  # type: ignore[method-assign]
    assert decide(spec, state.run, TaskFinished("w5"), state, T0) == []
    assert seen == ["join"]
    assert joins == ["join"]


def test_a_cascade_counts_its_own_skips_before_they_are_written() -> None:
    """A branch skips most of a wide join's upstream tasks in the same
    evaluation that then decides the join: the counts must include them."""
    middle = [f"w{i}" for i in range(WIDTH)]
    spec = make_spec(
        {"pick": middle, **{m: ["join"] for m in middle}},
        pick={"flow": "branch"},
        join={"trigger_rule": TriggerRule.ALL_SKIPPED},
    )
    assert spec.fan_ins.is_wide("join")
    state = running_state(spec)
    state.apply(decide(spec, state.run, RunStarted(), state, T0), T0)
    state.transition("pick", -1, TaskState.SCHEDULED, TaskState.QUEUED)
    state.transition("pick", -1, TaskState.QUEUED, TaskState.RUNNING)
    state.transition("pick", -1, TaskState.RUNNING, S, skip_downstream=tuple(middle))
    commands = decide(spec, state.run, TaskFinished("pick"), state, T0)
    decided = {c.task_id: c.state for c in commands if isinstance(c, SetTaskState)}
    assert decided == dict.fromkeys(middle, K)
    # every upstream skipped, none of it written yet: all_skipped lets the join run
    assert [c.task_id for c in commands if isinstance(c, ScheduleTask)] == ["join"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags(), st.integers(0, 1000))
def test_random_runs_end_the_same_with_every_join_counted(case, seed) -> None:
    spec, outcome_seed = case
    counted = with_threshold(spec, 0)
    read = with_threshold(spec, 10_000)
    a = simulate(read, outcome_for(read, outcome_seed), seed=seed)
    b = simulate(counted, outcome_for(counted, outcome_seed), seed=seed)
    assert not b.violations
    assert (b.run_state, b.states, b.tries) == (a.run_state, a.states, a.tries)
    assert b.schedule_log == a.schedule_log
