"""Mapped task groups in the engine (core.group_mapping): readiness index by index.

Inside the group, instance i of a task waits for instance i of its upstream
only; a task outside the group waits for every instance; skips, branches and
failures apply per index; finishing one instance reads a bounded number of
instances whatever the map's width.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import pytest

from chalicelib.core.engine import (
    ExpandTask,
    Reconcile,
    RunStarted,
    ScheduleTask,
    TaskFinished,
    decide,
)
from chalicelib.core.runs import TaskInstance
from chalicelib.core.spec import DagSpec, MappingSpec, MapSource
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.local.run_state import InMemoryRunState
from tests.core.simulation import T0, Outcome, make_spec, running_state, simulate

S, F = TaskState.SUCCESS, TaskState.FAILED


def group_mapping(source: str | None = "src", length: int | None = None) -> MappingSpec:
    src = MapSource(literal_length=length) if source is None else MapSource(xcom_task_id=source)
    return MappingSpec(sources={"x": src}, group="g")


def group_spec(edges: dict[str, list[str]], members: Iterable[str], **extra: Any) -> DagSpec:
    """``members`` are tasks of mapped group ``g`` over the result of ``src``."""
    kwargs: dict[str, dict[str, Any]] = {}
    for tid in members:
        kwargs[tid] = {"mapping": group_mapping(), "group_id": "g", **extra.pop(tid, {})}
    kwargs.update(extra)
    return make_spec(edges, **kwargs)


CHAIN = {"src": ["g.a"], "g.a": ["g.b"], "g.b": ["after"]}


def _length(n: int):
    def outcome(task: str, index: int, _try: int) -> Outcome:
        return Outcome(S, result_length=n if task == "src" else None)

    return outcome


class Driver:
    """One run driven by hand: start what the engine schedules, finish on demand."""

    def __init__(self, spec: DagSpec):
        self.spec = spec
        self.state = running_state(spec)
        self.started: list[tuple[str, int]] = []
        self.act(decide(spec, self.state.run, RunStarted(), self.state, T0))

    def act(self, commands: list[Any]) -> list[Any]:
        applied = self.state.apply(commands, T0)
        for c in applied:
            if isinstance(c, ScheduleTask):
                self.state.transition(c.task_id, c.map_index, TaskState.SCHEDULED, TaskState.QUEUED)
                self.state.transition(
                    c.task_id, c.map_index, TaskState.QUEUED, TaskState.RUNNING, start_date=T0
                )
                self.started.append((c.task_id, c.map_index))
        return applied

    def finish(self, task_id: str, index: int = -1, state: TaskState = S, **kw: Any) -> list[Any]:
        self.state.transition(task_id, index, TaskState.RUNNING, state, end_date=T0, **kw)
        view = self.view()
        return self.act(decide(self.spec, self.state.run, TaskFinished(task_id, index), view, T0))

    def view(self) -> CountingView:
        return CountingView(self.state)

    def label_state(self, task_id: str, index: int = -1) -> TaskState:
        ti = self.state.instance(task_id, index)
        assert ti is not None
        return ti.state


class CountingView:
    """The run view, counting what a decision reads."""

    def __init__(self, inner: InMemoryRunState):
        self.inner = inner
        self.instance_reads = 0
        self.summary_reads = 0

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, Any]:
        self.summary_reads += len(task_ids)
        return self.inner.summaries(task_ids)

    def fan_in(self, join_ids: Collection[str]) -> Mapping[str, Any]:
        return self.inner.fan_in(join_ids)

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None:
        self.instance_reads += 1
        return self.inner.instance(task_id, map_index)

    def unfinished(self) -> Iterable[TaskInstance]:
        return self.inner.unfinished()


def test_instance_i_waits_only_for_instance_i_of_its_upstream_in_the_group() -> None:
    run = Driver(group_spec(CHAIN, ["g.a", "g.b"]))
    run.finish("src", result_length=3)

    assert run.state.mapped_count == {"g.a": 3, "g.b": 3}
    assert sorted(run.started) == [("g.a", 0), ("g.a", 1), ("g.a", 2), ("src", -1)]
    run.finish("g.a", 1)
    assert ("g.b", 1) in run.started
    assert ("g.b", 0) not in run.started and ("g.b", 2) not in run.started


def test_a_task_below_the_group_waits_for_every_instance() -> None:
    run = Driver(group_spec(CHAIN, ["g.a", "g.b"]))
    run.finish("src", result_length=2)
    run.finish("g.a", 0)
    run.finish("g.b", 0)
    run.finish("g.a", 1)
    assert ("after", -1) not in run.started
    run.finish("g.b", 1)
    assert ("after", -1) in run.started


@pytest.mark.parametrize("width", [10, 2_000])
def test_finishing_one_instance_reads_a_bounded_number_of_instances(width: int) -> None:
    """Work per event does not grow with the map: a[i] releases b[i] alone."""
    spec = group_spec({"src": ["g.a"], "g.a": ["g.b"], "g.b": ["g.c"]}, ["g.a", "g.b", "g.c"])
    run = Driver(spec)
    run.finish("src", result_length=width)
    index = width // 2
    run.state.transition("g.a", index, TaskState.RUNNING, S, end_date=T0)
    view = run.view()

    commands = decide(spec, run.state.run, TaskFinished("g.a", index), view, T0)

    assert [(c.task_id, c.map_index) for c in commands] == [("g.b", index)]
    assert view.instance_reads <= 2 and view.summary_reads <= 3


def test_a_failure_stays_in_its_index() -> None:
    spec = group_spec(CHAIN, ["g.a", "g.b"])

    def outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=3)
        return Outcome(F if (task == "g.a" and index == 1) else S, non_retryable=True)

    res = simulate(spec, outcome)
    assert res.states["g.a[1]"] == "failed"
    assert res.states["g.b[1]"] == "upstream_failed"
    assert res.states["g.b[0]"] == res.states["g.b[2]"] == "success"
    assert res.states["after"] == "upstream_failed"
    assert res.run_state is DagRunState.FAILED


def test_a_task_below_the_group_with_all_done_runs_after_a_failed_index() -> None:
    spec = group_spec(CHAIN, ["g.a", "g.b"], after={"trigger_rule": "all_done"})

    def outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=2)
        return Outcome(F if (task == "g.b" and index == 0) else S, non_retryable=True)

    res = simulate(spec, outcome)
    assert res.states["after"] == "success"


def test_a_branch_in_the_group_skips_per_index() -> None:
    edges = {"src": ["g.pick"], "g.pick": ["g.left", "g.right"], "g.left": ["join"]}
    edges["g.right"] = ["join"]
    spec = group_spec(
        edges,
        ["g.pick", "g.left", "g.right"],
        **{"g.pick": {"flow": "branch"}, "join": {"trigger_rule": "none_failed"}},
    )

    def outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=4)
        if task == "g.pick":  # even indexes go left, odd ones right
            return Outcome(S, skip_downstream=("g.right",) if index % 2 == 0 else ("g.left",))
        return Outcome(S)

    for seed in range(5):
        res = simulate(spec, outcome, seed=seed)
        for i in range(4):
            assert res.states[f"g.left[{i}]"] == ("success" if i % 2 == 0 else "skipped")
            assert res.states[f"g.right[{i}]"] == ("skipped" if i % 2 == 0 else "success")
        assert res.states["join"] == "success"


def test_a_skipped_instance_skips_the_same_index_below_it() -> None:
    spec = group_spec(CHAIN, ["g.a", "g.b"])

    def outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=3)
        return Outcome(TaskState.SKIPPED if (task == "g.a" and index == 2) else S)

    res = simulate(spec, outcome)
    assert res.states["g.b[2]"] == "skipped"
    assert res.states["g.b[0]"] == "success"
    assert res.states["after"] == "skipped"  # all_success with a skipped upstream instance


def test_an_empty_input_skips_every_task_of_the_group() -> None:
    res = simulate(group_spec(CHAIN, ["g.a", "g.b"]), _length(0))
    assert res.states == {"src": "success", "g.a": "skipped", "g.b": "skipped", "after": "skipped"}


def test_a_failed_input_fails_the_group_upstream() -> None:
    res = simulate(
        group_spec(CHAIN, ["g.a", "g.b"]), lambda t, i, n: Outcome(F, non_retryable=True)
    )
    assert res.states == {
        "src": "failed",
        "g.a": "upstream_failed",
        "g.b": "upstream_failed",
        "after": "upstream_failed",
    }


def test_an_upstream_outside_the_group_holds_every_instance() -> None:
    edges = {"src": ["g.a"], "g.a": ["g.b"], "slow": ["g.b"]}
    run = Driver(group_spec(edges, ["g.a", "g.b"]))
    run.finish("src", result_length=2)
    run.finish("g.a", 0)
    run.finish("g.a", 1)
    assert not [s for s in run.started if s[0] == "g.b"]
    run.finish("slow")
    assert sorted(s for s in run.started if s[0] == "g.b") == [("g.b", 0), ("g.b", 1)]


def test_same_end_states_in_every_finishing_order() -> None:
    edges = {"src": ["g.a"], "g.a": ["g.b", "g.c"], "g.b": ["g.d"], "g.c": ["g.d"]}
    edges["g.d"] = ["after"]
    spec = group_spec(edges, ["g.a", "g.b", "g.c", "g.d"])

    def outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=5)
        return Outcome(F if (task == "g.c" and index == 3) else S, non_retryable=True)

    results = [simulate(spec, outcome, seed=seed).states for seed in range(12)]
    assert all(r == results[0] for r in results)
    assert results[0]["g.d[3]"] == "upstream_failed"
    assert results[0]["g.d[4]"] == "success"


def test_a_literal_input_expands_at_the_start_of_the_run() -> None:
    spec = make_spec(
        {"g.a": ["g.b"]},
        **{
            "g.a": {"mapping": group_mapping(None, 3), "group_id": "g"},
            "g.b": {"mapping": group_mapping(None, 3), "group_id": "g"},
        },
    )
    res = simulate(spec)
    assert sorted(res.states) == [f"g.{t}[{i}]" for t in "ab" for i in range(3)]
    assert set(res.states.values()) == {"success"}


def test_reconcile_expands_a_task_whose_expansion_was_lost() -> None:
    """A writer that died between the group's expansions: the run is evaluated
    again and the missing task expands, deciding each instance from its own index."""
    spec = group_spec(CHAIN, ["g.a", "g.b"])
    run = Driver(spec)
    run.state.transition("src", -1, TaskState.RUNNING, S, end_date=T0, result_length=2)
    commands = decide(spec, run.state.run, TaskFinished("src"), run.view(), T0)
    run.act([c for c in commands if c != ExpandTask("g.b", 2)])
    # both instances finish, and their events are lost too
    run.state.transition("g.a", 0, TaskState.RUNNING, S, end_date=T0)
    run.state.transition("g.a", 1, TaskState.RUNNING, F, end_date=T0)

    commands = decide(spec, run.state.run, Reconcile(), run.view(), T0)
    run.act(commands)

    assert ExpandTask("g.b", 2) in commands
    assert ("g.b", 0) in run.started
    assert run.label_state("g.b", 1) is TaskState.UPSTREAM_FAILED


def test_a_short_circuit_in_the_group_skips_its_own_index_only() -> None:
    edges = {"src": ["g.gate"], "g.gate": ["g.b"], "g.b": ["g.c"], "g.c": ["after"]}
    spec = group_spec(edges, ["g.gate", "g.b", "g.c"], **{"g.gate": {"flow": "short_circuit"}})

    def outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=3)
        if task == "g.gate":
            return Outcome(S, skip_downstream=("g.b",) if index == 1 else ())
        return Outcome(S)

    res = simulate(spec, outcome)
    assert [res.states[f"g.b[{i}]"] for i in range(3)] == ["success", "skipped", "success"]
    assert res.states["g.c[1]"] == "skipped" and res.states["g.c[2]"] == "success"
    assert res.states["after"] == "skipped"


def test_an_instance_finishing_repairs_a_lost_expansion_below_it() -> None:
    spec = group_spec(CHAIN, ["g.a", "g.b"])
    run = Driver(spec)
    run.state.transition("src", -1, TaskState.RUNNING, S, end_date=T0, result_length=2)
    commands = decide(spec, run.state.run, TaskFinished("src"), run.view(), T0)
    run.act([c for c in commands if c != ExpandTask("g.b", 2)])

    run.finish("g.a", 1)

    assert run.state.mapped_count["g.b"] == 2
    assert ("g.b", 1) in run.started and ("g.b", 0) not in run.started


def test_an_input_that_is_not_a_list_fails_the_group() -> None:
    """The input task's result has no length (not a list or dict): as for a mapped
    task, the group's first task fails and the rest of the group is upstream_failed."""
    res = simulate(group_spec(CHAIN, ["g.a", "g.b"]))  # result_length None
    assert res.states == {
        "src": "success",
        "g.a": "failed",
        "g.b": "upstream_failed",
        "after": "upstream_failed",
    }


@pytest.mark.parametrize("seed", range(8))
def test_each_index_ends_as_the_same_tasks_unmapped_would(seed: int) -> None:
    """Per-index semantics, checked against the engine itself: instance i of every
    task ends in the state the unmapped group would reach with index i's outcomes."""
    import random

    inner = {"a": ["b", "c"], "b": ["d"], "c": ["d"]}
    rules = {"d": {"trigger_rule": "none_failed"}, "c": {"trigger_rule": "all_done"}}
    width = 6
    rng = random.Random(seed)
    outcomes = {
        (task, i): rng.choice([S, S, F, TaskState.SKIPPED]) for task in "abcd" for i in range(width)
    }
    edges = {"src": ["g.a"], "g.d": ["after"]}
    edges.update({f"g.{t}": [f"g.{d}" for d in ds] for t, ds in inner.items()})
    members = [f"g.{t}" for t in "abcd"]
    extra = {f"g.{t}": r for t, r in rules.items()}
    spec = group_spec(edges, members, **extra, after={"trigger_rule": "all_done"})

    def mapped_outcome(task: str, index: int, _try: int) -> Outcome:
        if task == "src":
            return Outcome(S, result_length=width)
        if task == "after":
            return Outcome(S)
        return Outcome(outcomes[(task[2:], index)], non_retryable=True)

    mapped = simulate(spec, mapped_outcome, seed=seed).states
    for i in range(width):
        alone = simulate(
            make_spec(inner, **rules),
            lambda t, _i, _n, i=i: Outcome(outcomes[(t, i)], non_retryable=True),
        ).states
        assert {t: mapped[f"g.{t}[{i}]"] for t in "abcd"} == alone, (i, outcomes)
    assert mapped["after"] == "success"
