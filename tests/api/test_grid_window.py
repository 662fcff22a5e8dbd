"""The grid read a window of rows at a time (``task_offset``/``task_limit``,
``folded`` groups as one row): the answer's rows and cells, and the reads it
makes, which are the window's tasks only.

A DAG with nested task groups and a mapped task in a group is deployed next to
the examples; its instances are written straight to the store, so each cell's
letter is known. Sorted task ids and their rows (nothing folded):

    g load, t load.a, m load.b, g load.inner, t load.inner.c, t load.parts, t start, t zend
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.routes import grid as grid_route
from chalicelib.core.states import DagRunState
from tests.api.served import ROOT, Served, serve
from tests.api.test_grid import _run, _ti

PATH = "/slipstream/dags/grouped/grid"
GROUPED = """
import datetime as dt

from chalicelib.sdk import DAG, TaskGroup, task
from operators.empty import EmptyOperator

with DAG("grouped", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    EmptyOperator(task_id="start")
    with TaskGroup("load"):
        EmptyOperator(task_id="a")
        with TaskGroup("inner"):
            EmptyOperator(task_id="c")

        @task
        def parts() -> list[int]:
            return [1, 2]

        @task
        def b(x: int) -> int:
            return x

        b.expand(x=parts())
    EmptyOperator(task_id="zend")
"""
ALL_ROWS = [
    "load",
    "load.a",
    "load.b",
    "load.inner",
    "load.inner.c",
    "load.parts",
    "start",
    "zend",
]


def _deploy_grouped(served: Served, root: Path) -> None:
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "grouped.py").write_text(GROUPED)
    (root / "operators").symlink_to(ROOT / "operators")
    report = served.stack.deploy(root)
    assert report.ok, report.problems


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("grid_window")) as running:
        _deploy_grouped(running, tmp_path_factory.mktemp("grouped"))
        old = _run(0, DagRunState.FAILED, dag_id="grouped")
        for task_id, index, state in [
            ("start", -1, "success"),
            ("load.a", -1, "success"),
            ("load.inner.c", -1, "success"),
            ("load.parts", -1, "success"),
            ("load.b", -1, "success"),
            ("load.b", 0, "success"),
            ("load.b", 1, "failed"),
            ("zend", -1, "upstream_failed"),
        ]:
            _ti(old, task_id, index, state, dag_id="grouped")
        new = _run(1, DagRunState.RUNNING, dag_id="grouped")
        _ti(new, "start", -1, "running", dag_id="grouped")
        yield running


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The task ids whose instances each grid answer read (the server runs in-process)."""
    seen: list[set[str]] = []
    real = grid_route.runs_states

    def counted(*args: Any, **kwargs: Any) -> Any:
        columns = real(*args, **kwargs)
        seen.append({task_id for column in columns for task_id, _ in column})
        return columns

    monkeypatch.setattr(grid_route, "runs_states", counted)
    return seen


def test_rows_are_groups_then_members_in_task_id_order(served: Served) -> None:
    body = served.call("GET", PATH, role="viewer").json()
    assert body["total_rows"] == 8 and body["task_offset"] == 0
    assert body["task_ids"] == ALL_ROWS
    assert body["kinds"] == "gtmgtttt"
    # newest run first; a group heading has no states of its own
    assert dict(zip(body["task_ids"], body["states"], strict=True)) == {
        "load": "..",
        "load.a": "-S",
        "load.b": "-F",
        "load.inner": "..",
        "load.inner.c": "-S",
        "load.parts": "-S",
        "start": "RS",
        "zend": "-U",
    }
    assert body["mapped"]["load.b"]["counts"] == [{}, {"success": 1, "failed": 1}]
    assert body["groups"] == {}


def test_a_window_reads_only_its_own_tasks(served: Served, reads: list[set[str]]) -> None:
    body = served.call("GET", PATH, params={"task_offset": 2, "task_limit": 3}).json()
    assert body["task_ids"] == ["load.b", "load.inner", "load.inner.c"]
    assert body["kinds"] == "mgt" and body["total_rows"] == 8 and body["task_offset"] == 2
    assert body["states"] == ["-F", "..", "-S"]
    assert reads == [{"load.b", "load.inner.c"}]
    tail = served.call("GET", PATH, params={"task_offset": 6, "task_limit": 5}).json()
    assert tail["task_ids"] == ["start", "zend"] and tail["states"] == ["RS", "-U"]
    assert reads[1] == {"start", "zend"}
    past = served.call("GET", PATH, params={"task_offset": 8}).json()
    assert past["task_ids"] == [] and past["states"] == [] and past["total_rows"] == 8
    assert len(reads) == 2  # an empty window reads no instances at all


def test_a_folded_group_is_one_row_summarising_its_members(
    served: Served, reads: list[set[str]]
) -> None:
    body = served.call("GET", PATH, params={"folded": "load"}).json()
    assert body["task_ids"] == ["load", "start", "zend"] and body["kinds"] == "ftt"
    assert body["total_rows"] == 3
    # the newest run has no load.* instance yet; the old one has a failed mapped instance
    assert body["groups"]["load"]["counts"] == [{"none": 4}, {"success": 4, "failed": 1}]
    assert body["states"][0] == "-F"
    assert reads[0] == {"load.a", "load.b", "load.inner.c", "load.parts", "start", "zend"}
    inner = served.call("GET", PATH, params={"folded": "load.inner", "task_limit": 4}).json()
    assert inner["task_ids"] == ["load", "load.a", "load.b", "load.inner"]
    assert inner["kinds"] == "gtmf" and inner["total_rows"] == 7
    assert inner["groups"]["load.inner"]["counts"] == [{"none": 1}, {"success": 1}]
    assert inner["states"][3] == "-S"


def test_expand_lists_instances_of_a_mapped_task_in_the_window(served: Served) -> None:
    body = served.call("GET", PATH, params={"expand": "load.b", "task_limit": 3}).json()
    assert body["mapped"]["load.b"]["instances"] == [".S", ".F"]
    elsewhere = served.call("GET", PATH, params={"expand": "load.b", "task_offset": 6}).json()
    assert elsewhere["mapped"] == {}  # not in this window: nothing read, no error


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"folded": "nope"}, "folded names no task group of grouped: ['nope']"),
        ({"folded": "load.a"}, "folded names no task group of grouped: ['load.a']"),
        ({"expand": "load.a"}, "expand names tasks of grouped that are not mapped: ['load.a']"),
        ({"expand": "load"}, "expand names tasks of grouped that are not mapped: ['load']"),
    ],
)
def test_names_that_are_no_group_or_mapped_task_are_refused(
    served: Served, params: dict[str, str], message: str
) -> None:
    answer = served.call("GET", PATH, params=params)
    assert answer.status_code == 400 and answer.json()["detail"] == message


@pytest.mark.parametrize(
    "params",
    [{"task_limit": "0"}, {"task_limit": "1001"}, {"task_limit": "x"}, {"task_offset": "-1"}],
)
def test_out_of_range_windows_are_refused_naming_the_parameter(
    served: Served, params: dict[str, str]
) -> None:
    answer = served.call("GET", PATH, params=params)
    assert answer.status_code == 422  # as Airflow's API answers a query parameter's bounds
    assert next(iter(params)) in answer.text


def test_each_window_has_its_own_etag(served: Served) -> None:
    top = {"task_limit": 3}
    bottom = {"task_offset": 6, "task_limit": 2}
    top_tag = served.call("GET", PATH, params=top).headers["ETag"]
    bottom_tag = served.call("GET", PATH, params=bottom).headers["ETag"]
    assert top_tag != bottom_tag
    _ti("grid__1", "zend", -1, "queued", dag_id="grouped")
    same = served.call("GET", PATH, params=top, headers={"If-None-Match": top_tag})
    assert same.status_code == 304
    moved = served.call("GET", PATH, params=bottom, headers={"If-None-Match": bottom_tag})
    assert moved.status_code == 200 and moved.json()["states"] == ["RS", "QU"]
