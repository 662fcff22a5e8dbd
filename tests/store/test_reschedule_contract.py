"""A sensor's reschedule in both stores: UP_FOR_RESCHEDULE keeps the try and
the first poke; the next poke is queued by one conditional write, so a
duplicate timer's write loses; a new try forgets the first poke."""

from __future__ import annotations

import datetime as dt

from chalicelib.core.engine import ScheduleTask
from chalicelib.core.spec import ExecutorSpec
from chalicelib.core.states import TaskState
from chalicelib.store.base import StateStore
from tests.core.simulation import make_spec
from tests.store.runs import T0, new_run

SPEC = make_spec({"sensor": ["after"]})
R = TaskState.UP_FOR_RESCHEDULE
LATER = T0 + dt.timedelta(minutes=5)


def _schedule(expected: TaskState, try_number: int, same_try: bool) -> ScheduleTask:
    return ScheduleTask(
        task_id="sensor",
        map_index=-1,
        expected=expected,
        try_number=try_number,
        priority=1,
        pool="default_pool",
        pool_slots=1,
        executor=ExecutorSpec(),
        same_try=same_try,
    )


def _first_poke_rescheduled(store: StateStore) -> str:
    run = new_run(SPEC)
    assert store.create_run(run, SPEC) and store.start_run(run.dag_id, run.run_id, T0)
    store.apply(run.dag_id, run.run_id, SPEC, [_schedule(TaskState.NONE, 1, False)], T0)
    assert store.claim(run.dag_id, run.run_id, SPEC, "sensor", -1, 1, T0).won
    moved = store.transition(
        run.dag_id,
        run.run_id,
        SPEC,
        "sensor",
        -1,
        expected=TaskState.RUNNING,
        new=R,
        try_number=1,
        now=T0,
        next_try_at=LATER,
        first_poke_at=T0,
    )
    assert moved.won
    return run.run_id


def test_the_next_poke_is_queued_once_at_the_same_try(store: StateStore) -> None:
    run_id = _first_poke_rescheduled(store)
    dag_id = SPEC.dag_id
    ti = store.get_instance(dag_id, run_id, "sensor", -1)
    assert ti is not None
    assert (ti.state, ti.try_number, ti.first_poke_at, ti.next_try_at) == (R, 1, T0, LATER)
    poke = _schedule(R, 1, True)
    taken = store.apply(dag_id, run_id, SPEC, [poke], LATER)
    duplicate = store.apply(dag_id, run_id, SPEC, [poke], LATER)
    assert [c for c in taken if isinstance(c, ScheduleTask)] == [poke]
    assert [c for c in duplicate if isinstance(c, ScheduleTask)] == []
    ti = store.get_instance(dag_id, run_id, "sensor", -1)
    assert ti is not None
    assert (ti.state, ti.try_number, ti.first_poke_at) == (TaskState.QUEUED, 1, T0)
    assert store.claim(dag_id, run_id, SPEC, "sensor", -1, 1, LATER).won
    assert store.run_progress(dag_id, run_id).finished == 0


def test_a_new_try_forgets_the_first_poke(store: StateStore) -> None:
    run_id = _first_poke_rescheduled(store)
    dag_id = SPEC.dag_id
    retry = _schedule(R, 2, False)
    # a reschedule seen as a new try (expected at try 1, becomes try 2)
    assert [c for c in store.apply(dag_id, run_id, SPEC, [retry], LATER) if c == retry]
    ti = store.get_instance(dag_id, run_id, "sensor", -1)
    assert ti is not None and (ti.try_number, ti.first_poke_at) == (2, None)
