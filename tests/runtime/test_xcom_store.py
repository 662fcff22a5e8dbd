"""The in-memory XCom store: JSON semantics, isolation, ordering, thread safety."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from chalicelib.core.values import encode
from chalicelib.runtime.xcom import InMemoryXComStore, XComValueError, decode_item


def test_pull_tells_a_stored_none_from_a_missing_value() -> None:
    store = InMemoryXComStore()
    store.push("a", -1, "k", None)
    assert store.pull("a", -1, "k") == (True, None)
    assert store.pull("a", -1, "other") == (False, None)
    assert store.pull("b", -1, "k") == (False, None)


def test_values_round_trip_through_their_json_form() -> None:
    store = InMemoryXComStore()
    value = {
        "when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 1, 2),
        "wait": dt.timedelta(seconds=90),
        "pair": (1, "x"),
        "nested": [{"a": [1.5, None, True]}],
    }
    store.push("a", -1, "return_value", value)
    assert store.pull("a", -1, "return_value") == (True, value)


def test_a_pushed_value_is_a_snapshot_and_every_pull_a_fresh_copy() -> None:
    store = InMemoryXComStore()
    value = {"items": [1, 2]}
    store.push("a", -1, "k", value)
    value["items"].append(3)
    _, first = store.pull("a", -1, "k")
    first["items"].append(99)
    assert store.pull("a", -1, "k") == (True, {"items": [1, 2]})


class Custom:
    pass


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (Custom(), "Custom"),
        ({"deep": [1, {"x": Custom()}]}, "Custom"),
        ({1: "int key"}, "non-string keys"),
        (float("nan"), "float:nan"),
    ],
)
def test_a_value_without_json_form_is_refused_naming_task_key_and_type(
    value: object, type_name: str
) -> None:
    store = InMemoryXComStore()
    with pytest.raises(XComValueError) as caught:
        store.push("extract", 3, "rows", value)
    message = str(caught.value)
    assert "'extract'" in message and "'rows'" in message and type_name in message
    assert store.pull("extract", 3, "rows") == (False, None)


def test_pull_mapped_returns_instance_values_in_map_index_order() -> None:
    store = InMemoryXComStore()
    for index in (2, 0, 10, 1):
        store.push("m", index, "return_value", f"v{index}")
    store.push("m", -1, "return_value", "unmapped is not an instance")
    store.push("m", 5, "other", "other key")
    assert store.pull_mapped("m", "return_value") == ["v0", "v1", "v2", "v10"]
    assert store.pull_mapped("m", "missing") == []


def test_clear_forgets_one_instance_only() -> None:
    store = InMemoryXComStore()
    store.push("m", 0, "return_value", 0)
    store.push("m", 0, "extra", "e")
    store.push("m", 1, "return_value", 1)
    store.clear("m", 0)
    assert store.pull("m", 0, "return_value") == (False, None)
    assert store.pull("m", 0, "extra") == (False, None)
    assert store.pull_mapped("m", "return_value") == [1]


def test_concurrent_pushes_from_threads_all_land() -> None:
    store = InMemoryXComStore()
    barrier = threading.Barrier(8)

    def push_many(worker: int) -> None:
        barrier.wait()
        for i in range(250):
            store.push("m", worker * 250 + i, "return_value", [worker, i])

    threads = [threading.Thread(target=push_many, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = store.pull_mapped("m", "return_value")
    assert values == [[w, i] for w in range(8) for i in range(250)]


@pytest.mark.parametrize(
    ("value", "index", "expected"),
    [
        ([10, 20, 30], 1, (3, 20)),
        ((dt.date(2024, 1, 1), "b"), 0, (2, dt.date(2024, 1, 1))),
        ({"a": 1, "b": [2]}, 1, (2, ("b", [2]))),
    ],
)
def test_decode_item_decodes_only_the_item_asked_for(
    value: object, index: int, expected: tuple[int, object]
) -> None:
    assert decode_item(encode(value), index) == expected
