"""``ti.xcom_push`` / ``ti.xcom_pull`` with Airflow 2's semantics, and skip_downstream."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import SlipstreamError
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.xcom import InMemoryXComStore

MAPPED = {"mapped", "other_mapped"}


def make_ti(store: InMemoryXComStore, task_id: str = "me", map_index: int = -1):
    return RuntimeTaskInstance(
        dag_id="d",
        task_id=task_id,
        run_id="r",
        map_index=map_index,
        try_number=2,
        max_tries=3,
        task=None,
        xcoms=store,
        is_mapped=MAPPED.__contains__,
    )


@pytest.fixture
def store() -> InMemoryXComStore:
    s = InMemoryXComStore()
    s.push("up", -1, "return_value", {"n": 1})
    s.push("up", -1, "extra", "x")
    s.push("up2", -1, "return_value", "two")
    s.push("empty", -1, "return_value", None)
    for i in range(3):
        s.push("mapped", i, "return_value", i * 10)
    s.push("other_mapped", 0, "return_value", "a")
    return s


def test_single_task_id_gives_its_value(store: InMemoryXComStore) -> None:
    ti = make_ti(store)
    assert ti.xcom_pull(task_ids="up") == {"n": 1}
    assert ti.xcom_pull(task_ids="up", key="extra") == "x"
    assert ti.xcom_pull("up", key="missing") is None
    assert ti.xcom_pull("missing", default="dflt") == "dflt"


def test_a_stored_none_is_returned_not_the_default(store: InMemoryXComStore) -> None:
    assert make_ti(store).xcom_pull("empty", default="dflt") is None


def test_a_list_of_task_ids_gives_the_found_values_in_order(store: InMemoryXComStore) -> None:
    ti = make_ti(store)
    assert ti.xcom_pull(task_ids=["up2", "missing", "up"]) == ["two", {"n": 1}]


def test_a_mapped_upstream_gives_all_instance_values(store: InMemoryXComStore) -> None:
    ti = make_ti(store)
    assert ti.xcom_pull(task_ids="mapped") == [0, 10, 20]
    assert ti.xcom_pull(task_ids="mapped", map_indexes=1) == 10
    assert ti.xcom_pull(task_ids="mapped", map_indexes=[2, 0, 7]) == [20, 0]
    assert ti.xcom_pull(task_ids=["mapped", "up2"]) == [0, 10, 20, "two"]
    assert ti.xcom_pull(task_ids="mapped", key="nothing", default=[]) == []


def test_task_ids_none_means_the_current_task(store: InMemoryXComStore) -> None:
    ti = make_ti(store, task_id="me", map_index=4)
    ti.xcom_push("progress", 0.5)
    ti.xcom_push(key="rows", value=[1, 2])
    assert ti.xcom_pull(key="progress", map_indexes=4) == 0.5
    assert store.pull("me", 4, "rows") == (True, [1, 2])


def test_another_dag_is_refused(store: InMemoryXComStore) -> None:
    with pytest.raises(SlipstreamError, match="another DAG"):
        make_ti(store).xcom_pull("up", dag_id="other")
    assert make_ti(store).xcom_pull("up", dag_id="d") == {"n": 1}


def test_skip_downstream_accumulates_without_duplicates(store: InMemoryXComStore) -> None:
    ti = make_ti(store)
    assert ti.skipped_downstream is None
    ti.skip_downstream(["b", "c"])
    ti.skip_downstream(iter(["c", "d"]))
    assert ti.skipped_downstream == ("b", "c", "d")
    other = make_ti(store)
    other.skip_downstream([])
    assert other.skipped_downstream == ()


def test_airflow_attribute_names(store: InMemoryXComStore) -> None:
    ti = make_ti(store, map_index=2)
    assert (ti.dag_id, ti.task_id, ti.run_id, ti.map_index) == ("d", "me", "r", 2)
    assert (ti.try_number, ti.max_tries, ti.state.value) == (2, 3, "running")
    assert "d.me[2]" in repr(ti)
