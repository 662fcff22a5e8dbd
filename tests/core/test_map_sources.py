"""The engine sizes maps over XComArg.map / .zip from result lengths alone (core.map_sources)."""

from __future__ import annotations

import itertools

from chalicelib.core.engine import ExpandTask, TaskFinished, decide
from chalicelib.core.map_sources import leaf_sources, source_length
from chalicelib.core.spec import DagSpec, MappingSpec, MapSource
from chalicelib.core.states import TaskState
from chalicelib.core.validation import validate_spec
from chalicelib.local.run_state import InMemoryRunState
from tests.core.simulation import T0, Outcome, make_spec, running_state, simulate

S = TaskState.SUCCESS
A, B = MapSource(xcom_task_id="a"), MapSource(xcom_task_id="b")


def zip_spec(source: MapSource) -> DagSpec:
    return make_spec({"a": ["m"], "b": ["m"]}, m={"mapping": MappingSpec(sources={"x": source})})


def lengths(a: int | None, b: int | None):
    return lambda t, i, n: Outcome(S, result_length={"a": a, "b": b}.get(t))


def test_zip_has_the_shortest_inputs_length() -> None:
    res = simulate(zip_spec(MapSource(zip_sources=[A, B])), lengths(3, 5))
    assert sorted(k for k in res.states if k.startswith("m")) == ["m[0]", "m[1]", "m[2]"]


def test_zip_with_a_fillvalue_has_the_longest_inputs_length() -> None:
    res = simulate(zip_spec(MapSource(zip_sources=[A, B], zip_longest=True)), lengths(3, 5))
    assert sorted(k for k in res.states if k.startswith("m")) == [f"m[{i}]" for i in range(5)]


def test_map_keeps_its_sources_length() -> None:
    res = simulate(zip_spec(MapSource(xcom_task_id="a", map_callables=["d:f"])), lengths(4, 1))
    assert sum(k.startswith("m[") for k in res.states) == 4


def test_zip_with_an_empty_input_skips_the_task() -> None:
    res = simulate(zip_spec(MapSource(zip_sources=[A, B])), lengths(0, 5))
    assert res.states["m"] == "skipped"


def test_zip_over_a_result_that_is_not_a_list_fails_the_task() -> None:
    res = simulate(zip_spec(MapSource(zip_sources=[A, B])), lengths(3, None))
    assert res.states["m"] == "failed"


def finish(state: InMemoryRunState, task_id: str, length: int) -> None:
    path = [TaskState.NONE, TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING, S]
    for old, new in itertools.pairwise(path):
        state.transition(task_id, -1, old, new, **({"result_length": length} if new is S else {}))


def test_expansion_waits_for_every_zipped_upstream() -> None:
    spec = zip_spec(MapSource(zip_sources=[A, B], zip_longest=True))
    state = running_state(spec)
    finish(state, "a", 2)
    first = decide(spec, state.run, TaskFinished("a", -1), state, T0)
    assert not any(isinstance(c, ExpandTask) for c in first)
    finish(state, "b", 7)
    assert ExpandTask("m", 7) in decide(spec, state.run, TaskFinished("b", -1), state, T0)


def test_nested_zip_and_mapped_upstream() -> None:
    inner = MapSource(zip_sources=[A, B], zip_longest=True)
    source = MapSource(zip_sources=[inner, MapSource(literal_length=4)])
    sized = {"a": 2, "b": 6}

    def leaf(s: MapSource) -> tuple[int, str | None]:
        return sized.get(s.xcom_task_id or "", s.literal_length or 0), None

    assert source_length(source, leaf) == (4, None)  # min(max(2, 6), 4)
    assert list(leaf_sources([source])) == [A, B, MapSource(literal_length=4)]


def test_a_zipped_source_must_be_upstream() -> None:
    spec = make_spec(
        {"a": ["m"], "b": []},
        m={"mapping": MappingSpec(sources={"x": MapSource(zip_sources=[A, B])})},
    )
    messages = [p.message for p in validate_spec(spec)]
    assert any("reads the result of 'b', which is not upstream" in m for m in messages)


def test_unused_fields_stay_out_of_the_hashed_form() -> None:
    plain = zip_spec(A).canonical_json()
    assert "map_callables" not in plain and "zip_sources" not in plain
    longest = zip_spec(MapSource(zip_sources=[A, B], zip_longest=True))
    assert "zip_longest" in longest.canonical_json()
    assert DagSpec.from_json(longest.model_dump_json()) == longest
