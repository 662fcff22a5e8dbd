"""``GET /api/v2/slipstream/dags/{dag_id}/grid``: the compact grid of the last runs.

Runs and instances are written straight to the store (as the scheduler leaves
them), so each cell's expected letter is known; nothing runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.core.runs import DagRun, RunType
from chalicelib.core.states import DagRunState
from chalicelib.store.models import instance_pk, instance_sk
from tests.api.served import Served, serve

BASE = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
PATH = "/slipstream/dags/mapped_fanout/grid"


def _run(
    index: int,
    state: DagRunState,
    run_type: RunType = RunType.SCHEDULED,
    dag_id: str = "mapped_fanout",
) -> str:
    store = wiring.state_store()
    record = store.get_dag(dag_id)
    assert record is not None and record.current_version
    spec = deps.specs().get(dag_id, record.current_version)
    when = BASE + dt.timedelta(days=index)
    run = DagRun(
        dag_id=dag_id,
        run_id=f"grid__{index}",
        run_type=run_type,
        logical_date=when,
        data_interval_start=when,
        data_interval_end=when,
        run_after=when,
        version=record.current_version,
        state=state,
        start_date=when,
        end_date=when + dt.timedelta(minutes=1),
        tenant=record.tenant,
    )
    assert store.create_run(run, spec)
    return run.run_id


def _ti(
    run_id: str, task_id: str, map_index: int, state: str, dag_id: str = "mapped_fanout"
) -> None:
    model = wiring.state_store().models.task_instance
    model(instance_pk(dag_id, run_id), instance_sk(task_id, map_index), st=state, try_n=1).save()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("grid")) as running:
        first = _run(0, DagRunState.SUCCESS)
        _ti(first, "list_partitions", -1, "success")
        _ti(first, "process", -1, "success")  # the expanded task's own record
        for index in range(3):
            _ti(first, "process", index, "success")
        _ti(first, "summarise", -1, "success")
        second = _run(1, DagRunState.FAILED, RunType.MANUAL)
        _ti(second, "list_partitions", -1, "success")
        _ti(second, "process", 0, "success")
        _ti(second, "process", 1, "failed")
        _ti(second, "summarise", -1, "upstream_failed")
        _run(2, DagRunState.SUCCESS)  # no instances written yet: all "no status"
        yield running


def test_the_grid_is_one_letter_per_task_and_run(served: Served) -> None:
    answer = served.call("GET", PATH, role="viewer")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["dag_run_id"] for r in body["runs"]] == ["grid__2", "grid__1", "grid__0"]
    assert body["total_entries"] == 3
    assert [r["run_type"] for r in body["runs"]] == ["scheduled", "manual", "scheduled"]
    assert [r["state"] for r in body["runs"]] == ["success", "failed", "success"]
    assert all(r["version_number"] == 1 for r in body["runs"])
    assert body["task_ids"] == ["list_partitions", "process", "summarise"]
    # newest run first: no status, then the failed run, then the good one
    assert body["states"] == ["-SS", "-FS", "-US"]
    assert body["mapped"] == {
        "process": {
            "counts": [{}, {"success": 1, "failed": 1}, {"success": 3}],
            "instances": None,
        }
    }
    assert body["codes"]["F"] == "failed" and body["codes"]["-"] == "none"


def test_expand_lists_a_mapped_tasks_instances(served: Served) -> None:
    body = served.call("GET", PATH, params={"expand": "process"}).json()
    assert body["mapped"]["process"]["instances"] == [".SS", ".FS", "..S"]
    bad = served.call("GET", PATH, params={"expand": "summarise"})
    assert bad.status_code == 400 and "summarise" in bad.json()["detail"]


def test_paging_reads_the_runs_asked_for(served: Served) -> None:
    body = served.call("GET", PATH, params={"limit": 1, "offset": 1}).json()
    assert [r["dag_run_id"] for r in body["runs"]] == ["grid__1"]
    assert body["states"] == ["S", "F", "U"] and body["total_entries"] == 3
    past = served.call("GET", PATH, params={"offset": 3}).json()
    assert past["runs"] == [] and past["states"] == ["", "", ""]
    for limit in ("0", "101", "x"):
        assert served.call("GET", PATH, params={"limit": limit}).status_code == 422


def test_an_unchanged_grid_answers_304_and_a_change_a_new_tag(served: Served) -> None:
    first = served.call("GET", PATH, params={"limit": 1})
    etag = first.headers["ETag"]
    again = served.call("GET", PATH, params={"limit": 1}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.text == ""
    _ti("grid__2", "list_partitions", -1, "running")
    changed = served.call("GET", PATH, params={"limit": 1}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["states"][0] == "R"


def test_the_grid_is_the_callers_tenants_only(served: Served) -> None:
    assert served.call("GET", PATH, role=None).status_code == 401
    assert served.call("GET", PATH, tenant="acme", role="admin").status_code == 404
    mine = served.call("GET", "/slipstream/dags/acme_only/grid", tenant="acme", role="viewer")
    assert mine.status_code == 200 and mine.json()["task_ids"] == ["noop"]
    assert served.call("GET", "/slipstream/dags/acme_only/grid").status_code == 404
    missing = served.call("GET", "/slipstream/dags/no_such_dag/grid")
    assert missing.status_code == 404 and "no_such_dag" in missing.json()["detail"]
