"""Which kwargs each mapped instance gets: cross product order, dicts, expand_kwargs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from chalicelib.core.errors import MappingError
from chalicelib.runtime.mapping import arguments_for_index
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.xcom import InMemoryXComStore
from chalicelib.sdk.xcom_arg import XComArg
from tests.runtime.runtime_doubles import FakeDag, FakeMapped, FakeOperator, FakeXComArg


def ctx_for(store: InMemoryXComStore, mapped_ids: frozenset[str] = frozenset()) -> dict[str, Any]:
    ti = RuntimeTaskInstance(
        dag_id="d",
        task_id="m",
        run_id="r",
        map_index=0,
        try_number=1,
        max_tries=0,
        task=None,
        xcoms=store,
        is_mapped=mapped_ids.__contains__,
    )
    return {"ti": ti, "ds": "2024-01-01"}


def all_kwargs(mapped: FakeMapped, store: InMemoryXComStore, **ctx_args: Any) -> list[dict]:
    ctx = ctx_for(store, **ctx_args)
    first = arguments_for_index(mapped, 0, ctx, store)
    return [arguments_for_index(mapped, i, ctx, store).kwargs for i in range(first.total)]


def test_cross_product_varies_the_last_argument_fastest() -> None:
    dag = FakeDag()
    a, b, c = [1, 2], ["x", "y", "z"], [True, False]
    mapped = FakeMapped("m", dag, None, {"a": a, "b": b, "c": c})
    expected = [dict(zip("abc", combo, strict=True)) for combo in itertools.product(a, b, c)]
    assert all_kwargs(mapped, InMemoryXComStore()) == expected
    assert arguments_for_index(mapped, 0, ctx_for(InMemoryXComStore()), None).total == 12


def test_a_dict_source_maps_over_its_key_value_pairs() -> None:
    mapped = FakeMapped("m", FakeDag(), None, {"pair": {"k1": 1, "k2": [2]}, "n": [0, 1]})
    assert all_kwargs(mapped, InMemoryXComStore()) == [
        {"pair": ("k1", 1), "n": 0},
        {"pair": ("k1", 1), "n": 1},
        {"pair": ("k2", [2]), "n": 0},
        {"pair": ("k2", [2]), "n": 1},
    ]


@pytest.mark.parametrize("reference", [XComArg, FakeXComArg])
def test_upstream_sources_give_the_same_items_by_either_path(reference: type) -> None:
    dag = FakeDag()
    up = FakeOperator("up", dag)
    store = InMemoryXComStore()
    store.push("up", -1, "return_value", [{"id": 1}, {"id": 2}, {"id": 3}])
    store.push("up", -1, "pairs", {"a": (1, 2), "b": None})
    mapped = FakeMapped(
        "m", dag, None, {"row": reference(up), "pair": reference(up, "pairs"), "lit": ["L"]}
    )
    result = all_kwargs(mapped, store)
    assert result == [
        {"row": row, "pair": pair, "lit": "L"}
        for row in ({"id": 1}, {"id": 2}, {"id": 3})
        for pair in (("a", (1, 2)), ("b", None))
    ]


def test_only_the_fake_reference_needs_resolving() -> None:
    dag = FakeDag()
    up = FakeOperator("up", dag)
    store = InMemoryXComStore()
    store.push("up", -1, "return_value", list(range(5)))
    slow = FakeXComArg(up)
    fast_mapped = FakeMapped("m", dag, None, {"x": XComArg(up)})
    slow_mapped = FakeMapped("m2", dag, None, {"x": slow})
    assert arguments_for_index(fast_mapped, 3, ctx_for(store), store).kwargs == {"x": 3}
    assert arguments_for_index(slow_mapped, 3, ctx_for(store), store).kwargs == {"x": 3}
    assert slow.resolved == 1


def test_mapping_over_a_mapped_upstream_uses_its_instance_values() -> None:
    dag = FakeDag()
    up = FakeMapped("up", dag, None, {"x": [1, 2, 3]})
    store = InMemoryXComStore()
    for i in range(3):
        store.push("up", i, "return_value", i * 100)
    mapped = FakeMapped("m", dag, None, {"v": XComArg(up)})
    assert all_kwargs(mapped, store, mapped_ids=frozenset({"up"})) == [
        {"v": 0},
        {"v": 100},
        {"v": 200},
    ]


def test_values_from_upstream_are_marked_so_they_are_not_templated() -> None:
    dag = FakeDag()
    up = FakeOperator("up", dag)
    store = InMemoryXComStore()
    store.push("up", -1, "return_value", ["{{ x }}"])
    mapped = FakeMapped("m", dag, None, {"a": XComArg(up), "b": ["{{ ds }}"]})
    args = arguments_for_index(mapped, 0, ctx_for(store), store)
    assert id(args.kwargs["a"]) in args.from_upstream
    assert id(args.kwargs["b"]) not in args.from_upstream


def test_expand_kwargs_takes_one_dict_per_instance() -> None:
    dag = FakeDag()
    up = FakeOperator("up", dag)
    store = InMemoryXComStore()
    store.push("up", -1, "return_value", [{"a": 1}, {"a": 2, "b": "x"}])
    literal = FakeMapped(
        "m", dag, None, {"kwargs": [{"a": 1}, {"a": XComArg(up)}]}, expand_kind="expand_kwargs"
    )
    from_xcom = FakeMapped("m2", dag, None, {"kwargs": XComArg(up)}, expand_kind="expand_kwargs")
    assert all_kwargs(literal, store) == [{"a": 1}, {"a": [{"a": 1}, {"a": 2, "b": "x"}]}]
    assert all_kwargs(from_xcom, store) == [{"a": 1}, {"a": 2, "b": "x"}]


def test_expand_kwargs_items_must_be_dicts() -> None:
    mapped = FakeMapped("m", FakeDag(), None, {"kwargs": [1, 2]}, expand_kind="expand_kwargs")
    with pytest.raises(MappingError, match=r"expects a list\[dict\], not list\[int\]"):
        arguments_for_index(mapped, 0, ctx_for(InMemoryXComStore()), None)


def test_an_index_outside_the_map_is_an_error() -> None:
    mapped = FakeMapped("m", FakeDag(), None, {"a": [1, 2], "b": [3]})
    with pytest.raises(MappingError, match=r"map index 2 is outside 0\.\.1"):
        arguments_for_index(mapped, 2, ctx_for(InMemoryXComStore()), None)


@pytest.mark.parametrize("value", ["abc", 5, None])
def test_a_source_that_is_not_a_list_or_dict_is_an_error(value: Any) -> None:
    dag = FakeDag()
    up = FakeOperator("up", dag)
    store = InMemoryXComStore()
    store.push("up", -1, "return_value", value)
    mapped = FakeMapped("m", dag, None, {"a": XComArg(up)})
    with pytest.raises(MappingError, match="expand argument 'a' must be a list or dict"):
        arguments_for_index(mapped, 0, ctx_for(store), store)


class _ElementOnlyStore(InMemoryXComStore):
    """Refuses whole reads: a single-source map must read just its element."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[int] = []
        self.whole_reads = 0

    def pull_element(self, task_id: str, map_index: int, key: str, index: int):  # type: ignore[no-untyped-def]
        self.elements.append(index)
        return super().pull_element(task_id, map_index, key, index)

    def pull_encoded(self, task_id: str, map_index: int, key: str):  # type: ignore[no-untyped-def]
        self.whole_reads += 1
        return super().pull_encoded(task_id, map_index, key)


def test_a_single_source_map_reads_only_its_own_element() -> None:
    dag = FakeDag()
    up = FakeOperator("up", dag)
    store = _ElementOnlyStore()
    store.push("up", -1, "return_value", [{"id": i} for i in range(1_000)])
    mapped = FakeMapped("m", dag, None, {"row": XComArg(up)})
    store.whole_reads = 0
    args = arguments_for_index(mapped, 731, ctx_for(store), store)
    assert args.kwargs == {"row": {"id": 731}} and args.total == 1_000
    assert id(args.kwargs["row"]) in args.from_upstream
    assert store.elements == [731]
    assert store.whole_reads == 1  # the in-memory store's element read is a whole read
    # out of range: the general path names the range
    with pytest.raises(MappingError, match=r"map index 1000 is outside 0\.\.999"):
        arguments_for_index(mapped, 1_000, ctx_for(store), store)
