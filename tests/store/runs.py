"""Specs and a deterministic driver that runs whole DAG runs through a store."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from typing import Any

from chalicelib.core.engine import (
    Command,
    Event,
    FinishRun,
    RunStarted,
    ScheduleTask,
    TaskFinished,
    decide,
)
from chalicelib.core.runs import DagRun, RunType, make_run_id
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.store.base import StateStore
from tests.core.simulation import literal_mapping, make_spec

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MAP_WIDTH = 50


def chain_branch_map_spec() -> DagSpec:
    """extract -> pick (branch) -> {fan, other}; fan -> work (50-way map) -> report."""
    return make_spec(
        {
            "extract": ["pick"],
            "pick": ["fan", "other"],
            "fan": ["work"],
            "work": ["report"],
            "other": ["report"],
        },
        pick={"flow": "branch"},
        work={"mapping": literal_mapping(MAP_WIDTH)},
        report={"trigger_rule": TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS},
    )


def new_run(spec: DagSpec, when: dt.datetime = T0) -> DagRun:
    return DagRun(
        dag_id=spec.dag_id,
        run_id=make_run_id(RunType.MANUAL, when),
        run_type=RunType.MANUAL,
        logical_date=when,
        data_interval_start=when,
        data_interval_end=when,
        run_after=when,
        version=spec.content_hash,
        conf={"source": "test"},
    )


Worker = Callable[[ScheduleTask], dict[str, Any]]


def succeed(_cmd: ScheduleTask) -> dict[str, Any]:
    return {}


def drive(store: StateStore, spec: DagSpec, run: DagRun, worker: Worker = succeed) -> DagRun:
    """Create, start and run ``run`` to the end, one try at a time, in FIFO order."""
    store.create_run(run, spec)
    store.start_run(run.dag_id, run.run_id, T0)
    ready: deque[ScheduleTask] = deque()

    def act(event: Event) -> None:
        current = store.get_run(run.dag_id, run.run_id)
        assert current is not None
        view = store.run_view(run.dag_id, run.run_id, spec)
        commands: list[Command] = decide(spec, current, event, view, T0)
        for cmd in store.apply(run.dag_id, run.run_id, spec, commands, T0):
            if isinstance(cmd, ScheduleTask):
                ready.append(cmd)
            elif isinstance(cmd, FinishRun):
                store.finish_run(run.dag_id, run.run_id, cmd.state, T0)

    act(RunStarted())
    while ready:
        cmd = ready.popleft()
        key = (run.dag_id, run.run_id, spec, cmd.task_id, cmd.map_index)
        # applying ScheduleTask left the try QUEUED; the worker claims it
        assert store.transition(
            *key,
            expected=TaskState.QUEUED,
            new=TaskState.RUNNING,
            try_number=cmd.try_number,
            now=T0,
        ).won
        done = store.transition(
            *key,
            expected=TaskState.RUNNING,
            new=TaskState.SUCCESS,
            try_number=cmd.try_number,
            now=T0,
            end_date=T0,
            **worker(cmd),
        )
        assert done.won
        if done.run_outcome is not None:
            store.finish_run(run.dag_id, run.run_id, done.run_outcome, T0)
        act(TaskFinished(cmd.task_id, cmd.map_index))
    final = store.get_run(run.dag_id, run.run_id)
    assert final is not None
    assert final.state is not DagRunState.RUNNING, "the run did not end"
    return final


def record_success(
    store: StateStore,
    spec: DagSpec,
    run: DagRun,
    task_id: str,
    map_index: int = -1,
    *,
    now: dt.datetime,
    defer: bool = True,
    **extra: Any,
) -> Any:
    """Try 1 of a running instance ends in success at ``now``, as a worker records
    it (its counters deferred to ``settle_counters`` unless ``defer`` is False)."""
    return store.transition(
        run.dag_id,
        run.run_id,
        spec,
        task_id,
        map_index,
        expected=TaskState.RUNNING,
        new=TaskState.SUCCESS,
        try_number=1,
        now=now,
        end_date=now,
        defer_counters=defer,
        **extra,
    )
