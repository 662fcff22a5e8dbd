"""ExternalTaskSensor: task and run states of another DAG at the matching
logical date, read through the worker's reader (the store, one tenant)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.states import DagRunState
from chalicelib.runtime.dag_states import StoreDagStateReader, reading_dag_states
from chalicelib.sdk import DAG
from chalicelib.sdk.exceptions import TaskFailed, TaskSkipped
from chalicelib.store.base import DagRecord
from chalicelib.store.memory import InMemoryStateStore
from operators.sensors.external_task import ExternalTaskSensor
from tests.core.simulation import make_spec

T0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


class Reader:
    """Run and task states by (dag_id, logical date)."""

    def __init__(self, runs: dict[tuple[str, dt.datetime], tuple[str, dict[str, list[str]]]]):
        self.runs = runs
        self.asked: list[dt.datetime] = []

    def dag_exists(self, dag_id: str) -> bool:
        return any(d == dag_id for d, _ in self.runs)

    def run_state(self, dag_id: str, logical_date: dt.datetime) -> str | None:
        self.asked.append(logical_date)
        found = self.runs.get((dag_id, logical_date))
        return found[0] if found else None

    def task_states(self, dag_id: str, logical_date: dt.datetime, task_ids: Any) -> Any:
        self.asked.append(logical_date)
        found = self.runs.get((dag_id, logical_date))
        tasks = found[1] if found else {}
        return {tid: tasks.get(tid, []) for tid in task_ids}


def _sensor(**kwargs: Any) -> ExternalTaskSensor:
    with DAG("waiting", start_date=T0, schedule=None):
        return ExternalTaskSensor(task_id="upstream_done", external_dag_id="etl", **kwargs)


def _poke(sensor: ExternalTaskSensor, reader: Reader, logical_date: dt.datetime = T0) -> bool:
    with reading_dag_states(reader):
        return sensor.poke({"logical_date": logical_date})


def test_waits_for_a_task_of_the_run_at_the_same_logical_date() -> None:
    sensor = _sensor(external_task_id="load")
    assert not _poke(sensor, Reader({}))
    assert not _poke(sensor, Reader({("etl", T0): ("running", {"load": ["running"]})}))
    assert _poke(sensor, Reader({("etl", T0): ("running", {"load": ["success"]})}))


def test_every_task_and_every_map_index_must_be_allowed() -> None:
    sensor = _sensor(external_task_ids=["load", "check"], allowed_states=["success", "skipped"])
    partly = {"load": ["success", "running"], "check": ["skipped"]}
    assert not _poke(sensor, Reader({("etl", T0): ("running", partly)}))
    done = {"load": ["success", "success"], "check": ["skipped"]}
    assert _poke(sensor, Reader({("etl", T0): ("running", done)}))


def test_whole_run_state_with_execution_delta() -> None:
    sensor = _sensor(execution_delta=dt.timedelta(hours=1))
    earlier = T0 - dt.timedelta(hours=1)
    reader = Reader({("etl", earlier): ("success", {})})
    assert _poke(sensor, reader)
    assert reader.asked == [earlier]


def test_execution_date_fn_may_name_several_dates() -> None:
    sensor = _sensor(
        execution_date_fn=lambda logical, context: [logical, logical - dt.timedelta(days=1)]
    )
    yesterday = T0 - dt.timedelta(days=1)
    assert not _poke(sensor, Reader({("etl", T0): ("success", {})}))
    both = {("etl", T0): ("success", {}), ("etl", yesterday): ("success", {})}
    assert _poke(sensor, Reader(both))


def test_failed_and_skipped_states() -> None:
    sensor = _sensor(external_task_id="load", failed_states=["failed"], skipped_states=["skipped"])
    with pytest.raises(TaskFailed, match="failed"):
        _poke(sensor, Reader({("etl", T0): ("failed", {"load": ["failed"]})}))
    with pytest.raises(TaskSkipped):
        _poke(sensor, Reader({("etl", T0): ("success", {"load": ["skipped"]})}))
    soft = _sensor(external_task_id="load", failed_states=["failed"], soft_fail=True)
    failed = Reader({("etl", T0): ("failed", {"load": ["failed"]})})
    with pytest.raises(TaskSkipped), reading_dag_states(failed):
        soft.execute({"logical_date": T0})


def test_check_existence() -> None:
    sensor = _sensor(check_existence=True)
    with pytest.raises(TaskFailed, match="does not exist"):
        _poke(sensor, Reader({}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"external_task_id": "a", "external_task_ids": ["b"]}, "not both"),
        ({"allowed_states": ["queued"], "external_task_id": "a"}, None),
        ({"allowed_states": ["upstream_failed"]}, "not DAG run states"),
        ({"allowed_states": ["success"], "failed_states": ["success"]}, "more than one"),
        ({"external_task_group_id": "g"}, "external_task_group_id is not supported"),
        (
            {"execution_delta": dt.timedelta(1), "execution_date_fn": lambda d: d},
            "not both",
        ),
    ],
)
def test_arguments_are_checked(kwargs: dict[str, Any], message: str | None) -> None:
    if message is None:
        _sensor(**kwargs)  # a valid task state
        return
    with pytest.raises(ValueError, match=message):
        _sensor(**kwargs)


class Specs:
    def __init__(self, spec: Any):
        self.spec = spec

    def get(self, dag_id: str, version: str) -> Any:
        return self.spec


def test_the_store_reader_finds_runs_by_logical_date_within_its_tenant() -> None:
    store = InMemoryStateStore()
    spec = make_spec({"extract": ["load"]}).model_copy(update={"dag_id": "etl"})
    store.upsert_dag(DagRecord(dag_id="etl", tenant="team-a"))
    run = DagRun(
        dag_id="etl",
        run_id=make_run_id(RunType.SCHEDULED, T0),
        run_type=RunType.SCHEDULED,
        logical_date=T0,
        data_interval_start=T0,
        data_interval_end=T0,
        run_after=T0,
        state=DagRunState.RUNNING,
    )
    store.create_run(run, spec)
    assert store.claim("etl", run.run_id, spec, "extract", -1, 1, T0, direct=True).won
    reader = StoreDagStateReader(store, Specs(spec), "team-a")
    assert reader.run_state("etl", T0) == "running"
    assert reader.task_states("etl", T0, ["extract", "gone"]) == {
        "extract": ["running"],
        "gone": [],
    }
    assert reader.run_state("etl", T0 - dt.timedelta(days=1)) is None
    assert StoreDagStateReader(store, Specs(spec), "team-b").run_state("etl", T0) is None
    assert not StoreDagStateReader(store, Specs(spec), None).dag_exists("etl")
