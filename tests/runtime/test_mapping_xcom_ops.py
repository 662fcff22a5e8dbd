"""One mapped instance's arguments from XComArg.map / .zip: its own element only, fn once."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.runtime.mapping import arguments_for_index
from chalicelib.runtime.xcom import InMemoryXComStore
from chalicelib.sdk.exceptions import TaskSkipped
from chalicelib.sdk.xcom_arg import XComArg
from tests.runtime.runtime_doubles import FakeDag, FakeMapped, FakeOperator
from tests.runtime.test_mapping_expand import _ElementOnlyStore, ctx_for


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, value: Any) -> Any:
        self.seen.append(value)
        if value == "skip":
            raise TaskSkipped("not this one")
        return {"name": str(value).upper()}


def _upstream(store: InMemoryXComStore, task_id: str, value: Any) -> XComArg:
    store.push(task_id, -1, "return_value", value)
    return XComArg(FakeOperator(task_id, FakeDag()))


def test_a_mapped_single_source_reads_its_element_and_calls_fn_once() -> None:
    store = _ElementOnlyStore()
    fn = Recorder()
    files = _upstream(store, "up", [f"f{i}" for i in range(1_000)])
    mapped = FakeMapped("m", FakeDag(), None, {"x": files.map(fn)})
    store.whole_reads = 0
    args = arguments_for_index(mapped, 731, ctx_for(store), store)
    assert args.kwargs == {"x": {"name": "F731"}} and args.total == 1_000
    assert fn.seen == ["f731"] and store.elements == [731]
    assert id(args.kwargs["x"]) in args.from_upstream  # never templated


def test_expand_kwargs_over_a_map_calls_fn_on_its_element_only() -> None:
    store = InMemoryXComStore()
    fn = Recorder()
    files = _upstream(store, "up", {"a": 1, "b": 2})  # a dict: its (key, value) pairs
    mapped = FakeMapped(
        "m",
        FakeDag(),
        None,
        {"kwargs": files.map(lambda kv: {kv[0]: kv[1]})},
        expand_kind="expand_kwargs",
    )
    assert arguments_for_index(mapped, 1, ctx_for(store), store).kwargs == {"b": 2}
    cross = FakeMapped("c", FakeDag(), None, {"x": files.map(fn), "n": [0, 1]})
    assert arguments_for_index(cross, 3, ctx_for(store), store).kwargs == {
        "x": {"name": "('B', 2)"},
        "n": 1,
    }
    assert fn.seen == [("b", 2)]


def test_zip_shortest_longest_and_chained_map() -> None:
    store = InMemoryXComStore()
    a = _upstream(store, "a", [1, 2, 3])
    b = _upstream(store, "b", ["x"])
    short = FakeMapped("s", FakeDag(), None, {"p": a.zip(b)})
    long = FakeMapped("l", FakeDag(), None, {"p": a.zip(b, fillvalue=None)})
    chained = FakeMapped("c", FakeDag(), None, {"p": a.zip(b, fillvalue="-").map("".join)})
    first = arguments_for_index(short, 0, ctx_for(store), store)
    assert first.kwargs == {"p": (1, "x")} and first.total == 1
    assert arguments_for_index(long, 2, ctx_for(store), store).kwargs == {"p": (3, None)}
    with pytest.raises(TypeError):  # join of an int: the function's error is the instance's
        arguments_for_index(chained, 1, ctx_for(store), store)


def test_a_skip_raised_by_fn_reaches_the_try() -> None:
    store = InMemoryXComStore()
    mapped = FakeMapped(
        "m", FakeDag(), None, {"x": _upstream(store, "up", ["ok", "skip"]).map(Recorder())}
    )
    assert arguments_for_index(mapped, 0, ctx_for(store), store).kwargs == {"x": {"name": "OK"}}
    with pytest.raises(TaskSkipped, match="not this one"):
        arguments_for_index(mapped, 1, ctx_for(store), store)


class _CountingStore(InMemoryXComStore):
    """Counts whole decoded reads (``pull``), which a zipped input should not need."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded_reads = 0

    def pull(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        self.decoded_reads += 1
        return super().pull(task_id, map_index, key)


def test_zipped_inputs_are_read_encoded_and_decoded_one_element_each() -> None:
    store = _CountingStore()
    a = _upstream(store, "a", list(range(500)))
    b = _upstream(store, "b", {f"k{i}": i for i in range(3)})
    mapped = FakeMapped("m", FakeDag(), None, {"p": a.zip(b, fillvalue=None).map(list)})
    args = arguments_for_index(mapped, 2, ctx_for(store), store)
    assert args.kwargs == {"p": [2, ("k2", 2)]} and args.total == 500
    assert arguments_for_index(mapped, 499, ctx_for(store), store).kwargs == {"p": [499, None]}
    assert store.decoded_reads == 0
