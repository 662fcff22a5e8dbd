"""Every store write, applied once with its answer lost and retried, ends as one clean call.

Each case runs the same setup and the same step on two stores in one moto:
a clean one, and one where the step's first write is applied by moto and then
answered with HTTP 500, so botocore retries it (tests/aws_faults.py).
The step must report the same result and leave the same items behind.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.core.engine import ExpandTask, ScheduleTask
from chalicelib.core.fan_in import WIDE_FAN_IN
from chalicelib.core.runs import DagRun
from chalicelib.core.slots import SlotClaim
from chalicelib.core.spec import DagSpec, ExecutorSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.store.base import StoreError
from chalicelib.store.catalog import Catalog
from chalicelib.store.dynamo_view import _instance_from_item
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import instance_pk
from tests.aws_faults import AMBIGUOUS, REFUSE, AwsFaults
from tests.core.simulation import literal_mapping, make_spec
from tests.store.conftest import make_dynamo_store, store_settings
from tests.store.runs import T0, new_run, record_success

SPEC = make_spec({"a": ["b"], "b": []})
MAPPED = make_spec({"src": ["m"], "m": []}, m={"mapping": literal_mapping(3)})
# a wide join (core.fan_in): finishing w0 moves the join's counts on the run item
WIDE = make_spec({f"w{i}": ["join"] for i in range(WIDE_FAN_IN + 1)})
LATER = T0 + dt.timedelta(seconds=30)
_RUNS = itertools.count(1)


def etl(run: DagRun) -> SlotClaim:
    """A pool of the run's own, so the module's shared tables keep cases apart."""
    return SlotClaim(f"pool:{run.run_id}", 2, 3)


def schedule(task_id: str, map_index: int = -1, claims: tuple[SlotClaim, ...] = ()) -> ScheduleTask:
    return ScheduleTask(
        task_id, map_index, TaskState.NONE, 1, 1, "default_pool", 1, ExecutorSpec(), claims
    )


@dataclass
class Case:
    """``setup`` prepares a store and returns what ``step`` needs; only ``step`` is faulted."""

    spec: DagSpec
    setup: Callable[[DynamoStateStore, DagRun], Any]
    step: Callable[[DynamoStateStore, DagRun, Any], Any]
    operation: str  # the botocore operation whose answer is lost


def snapshot(store: DynamoStateStore, run: DagRun) -> dict[str, Any]:
    """What a step leaves behind, without the per-call write tokens."""
    ti = store.models.task_instance
    stored = store.get_run(run.dag_id, run.run_id)
    item = store._run_item(run.dag_id, run.run_id)
    maps = None if item is None or item.maps is None else item.maps.as_dict()
    fanin = None if item is None or item.fanin is None else item.fanin.as_dict()
    return {
        "run": None if stored is None else (stored.state, stored.start_date, stored.end_date),
        "progress": None if item is None else store.run_progress(run.dag_id, run.run_id),
        "maps": maps,
        "fanin": fanin,
        "settles": None if item is None else (int(item.sq or 0), len(item.sl or [])),
        "runs": store.run_count(run.dag_id),
        "instances": sorted(
            (
                _instance_from_item(i)
                for i in ti.query(instance_pk(run.dag_id, run.run_id), consistent_read=True)
            ),
            key=lambda t: (t.task_id, t.map_index),
        ),
        "heartbeats": sorted(
            str(i.hb) for i in ti.query(instance_pk(run.dag_id, run.run_id), consistent_read=True)
        ),
        "pools": {
            p.name: int(p.used or 0)
            for p in store.models.pool.scan(consistent_read=True)
            if run.run_id in p.name
        },
    }


@pytest.fixture(scope="module")
def stores() -> Iterator[tuple[DynamoStateStore, DynamoStateStore]]:
    """One pair of stores for the module (tables are slow to make); every case
    works on a run (and pool) of its own, the same one on both stores."""
    with mock_aws():
        clean = make_dynamo_store(store_settings(stage="clean", bucket="clean-state"))
        faulty = make_dynamo_store(store_settings(stage="faulty", bucket="faulty-state"))
        yield clean, faulty


@dataclass(frozen=True)
class Fault:
    """Which call of a case's step fails, and how: its first attempt(s) only."""

    operation: str
    kind: str = AMBIGUOUS
    times: int = 1

    def install(self, faults: AwsFaults) -> None:
        add = faults.ambiguous if self.kind == AMBIGUOUS else faults.refuse
        add("dynamodb", self.operation, times=self.times)


def faulted(fault: Fault) -> AwsFaults:
    """An injector with ``fault`` installed, to be entered with ``with``."""
    faults = AwsFaults(seed=11)
    fault.install(faults)
    return faults


def outcome(
    store: DynamoStateStore, case: Case, run_day: int, fault: Fault | None = None
) -> tuple[Any, dict[str, Any]]:
    run = new_run(case.spec, T0 + dt.timedelta(days=run_day))
    runs_before = store.run_count(run.dag_id)  # the DAG's counter is shared by the cases
    context = case.setup(store, run)
    if fault is None:
        result = case.step(store, run, context)
    else:
        with faulted(fault) as faults:
            result = case.step(store, run, context)
        assert faults.fired() == 1, "the fault never fired: the case tests nothing"
    after = snapshot(store, run)
    after["runs"] -= runs_before
    return _comparable(result), after


def _comparable(result: Any) -> Any:
    """Results as a caller reads them (TransitionResult's pending write is internal)."""
    if hasattr(result, "won") and hasattr(result, "pending"):
        return (result.won, result.instance, result.run_outcome)
    if hasattr(result, "progress") and hasattr(result, "mapped"):
        return (result.progress, result.mapped, result.fan_in)
    return result


# ------------------------------------------------------------------- steps


def _created(store: DynamoStateStore, run: DagRun, spec: DagSpec = SPEC) -> None:
    assert store.create_run(run, spec)
    assert store.start_run(run.dag_id, run.run_id, T0)


def _queued(store: DynamoStateStore, run: DagRun) -> None:
    _created(store, run)
    assert store.apply(run.dag_id, run.run_id, SPEC, [schedule("a")], T0)


def _running(store: DynamoStateStore, run: DagRun) -> None:
    _queued(store, run)
    assert store.claim(run.dag_id, run.run_id, SPEC, "a", -1, 1, T0).won


def _finish_a(
    store: DynamoStateStore, run: DagRun, defer: bool = False, releases: tuple[str, ...] = ()
) -> Any:
    held = {"releases": releases, "slots": ()} if releases else {}
    return record_success(store, SPEC, run, "a", now=LATER, defer=defer, **held)


def _mapped_recorded(store: DynamoStateStore, run: DagRun) -> Any:
    _created(store, run, MAPPED)
    ids = (run.dag_id, run.run_id, MAPPED)
    store.apply(*ids, [ExpandTask("m", 3)], T0)
    assert store.claim(*ids, "m", 1, 1, T0, direct=True).won
    recorded = record_success(store, MAPPED, run, "m", 1, now=LATER)
    assert recorded.won
    return recorded.pending


def _wide_running(store: DynamoStateStore, run: DagRun) -> None:
    _created(store, run, WIDE)
    assert store.claim(run.dag_id, run.run_id, WIDE, "w0", -1, 1, T0, direct=True).won


def _finish_w0(store: DynamoStateStore, run: DagRun, defer: bool = False) -> Any:
    return record_success(store, WIDE, run, "w0", now=LATER, defer=defer)


def _held(store: DynamoStateStore, run: DagRun) -> tuple[str, ...]:
    _created(store, run)
    ids = (run.dag_id, run.run_id, SPEC)
    store.apply(*ids, [schedule("a", claims=(etl(run),))], T0)
    assert store.acquire(*ids, "a", -1, 1, (etl(run),), T0)
    claimed = store.claim(*ids, "a", -1, 1, T0)
    assert claimed.instance is not None
    return claimed.instance.slots


def _finished_run(store: DynamoStateStore, run: DagRun) -> None:
    _created(store, run)
    assert store.finish_run(run.dag_id, run.run_id, DagRunState.SUCCESS, T0)


CASES = {
    "create_run": Case(
        SPEC, lambda s, r: None, lambda s, r, _: s.create_run(r, SPEC), "TransactWriteItems"
    ),
    "start_run": Case(
        SPEC,
        lambda s, r: s.create_run(r, SPEC),
        lambda s, r, _: s.start_run(r.dag_id, r.run_id, T0),
        "UpdateItem",
    ),
    "finish_run": Case(
        SPEC,
        _created,
        lambda s, r, _: s.finish_run(r.dag_id, r.run_id, DagRunState.FAILED, LATER),
        "UpdateItem",
    ),
    "delete_run": Case(
        SPEC,
        _finished_run,
        lambda s, r, _: Catalog(s).delete_run(r.dag_id, r.run_id),
        "TransactWriteItems",
    ),
    "queue": Case(
        SPEC,
        _created,
        lambda s, r, _: s.apply(r.dag_id, r.run_id, SPEC, [schedule("a")], T0),
        "UpdateItem",
    ),
    "expand": Case(
        MAPPED,
        lambda s, r: _created(s, r, MAPPED),
        lambda s, r, _: s.apply(r.dag_id, r.run_id, MAPPED, [ExpandTask("m", 3)], T0),
        "TransactWriteItems",
    ),
    "claim": Case(
        SPEC,
        _queued,
        lambda s, r, _: s.claim(r.dag_id, r.run_id, SPEC, "a", -1, 1, T0),
        "UpdateItem",
    ),
    "direct_claim": Case(
        SPEC,
        _created,
        lambda s, r, _: s.claim(r.dag_id, r.run_id, SPEC, "a", -1, 1, T0, direct=True),
        "UpdateItem",
    ),
    "heartbeat": Case(
        SPEC,
        _running,
        lambda s, r, _: s.heartbeat(r.dag_id, r.run_id, "a", -1, 1, LATER),
        "UpdateItem",
    ),
    "record_with_counters": Case(
        SPEC, _running, lambda s, r, _: _finish_a(s, r), "TransactWriteItems"
    ),
    "record_deferred": Case(
        SPEC, _running, lambda s, r, _: _finish_a(s, r, defer=True), "UpdateItem"
    ),
    "settle_counters": Case(
        SPEC,
        lambda s, r: (_running(s, r), _finish_a(s, r, defer=True).pending)[1],
        lambda s, r, pending: s.settle_counters(r.dag_id, r.run_id, pending),
        "UpdateItem",
    ),
    "settle_mapped_tally": Case(
        MAPPED,
        _mapped_recorded,
        lambda s, r, pending: s.settle_counters(r.dag_id, r.run_id, pending),
        "UpdateItem",
    ),
    "record_with_fan_in_counts": Case(
        WIDE, _wide_running, lambda s, r, _: _finish_w0(s, r), "TransactWriteItems"
    ),
    "settle_fan_in_counts": Case(
        WIDE,
        lambda s, r: (_wide_running(s, r), _finish_w0(s, r, defer=True).pending)[1],
        lambda s, r, pending: s.settle_counters(r.dag_id, r.run_id, pending),
        "UpdateItem",
    ),
    "acquire_slots": Case(
        SPEC,
        lambda s, r: (
            _created(s, r),
            s.apply(r.dag_id, r.run_id, SPEC, [schedule("a", claims=(etl(r),))], T0),
        ),
        lambda s, r, _: s.acquire(r.dag_id, r.run_id, SPEC, "a", -1, 1, (etl(r),), T0),
        "TransactWriteItems",
    ),
    "release_slots": Case(
        SPEC,
        _held,
        lambda s, r, held: _finish_a(s, r, defer=True, releases=held),
        "TransactWriteItems",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_lost_answer_retried_ends_as_one_clean_call(
    name: str, stores: tuple[DynamoStateStore, DynamoStateStore]
) -> None:
    clean, faulty = stores
    case = CASES[name]
    day = next(_RUNS)
    expected = outcome(clean, case, day)
    got = outcome(faulty, case, day, Fault(case.operation))
    assert got == expected


@pytest.mark.parametrize("name", ["claim", "settle_counters", "create_run", "acquire_slots"])
def test_a_refused_call_retried_ends_as_one_clean_call(
    name: str, stores: tuple[DynamoStateStore, DynamoStateStore]
) -> None:
    clean, faulty = stores
    case = CASES[name]
    day = next(_RUNS)
    assert outcome(faulty, case, day, Fault(case.operation, REFUSE)) == outcome(clean, case, day)


def test_another_writer_still_wins_against_a_retry(
    stores: tuple[DynamoStateStore, DynamoStateStore],
) -> None:
    """The token only recognises our own write: a claim that really lost stays lost."""
    _, store = stores
    run = new_run(SPEC, T0 - dt.timedelta(days=1))
    _queued(store, run)
    ids = (run.dag_id, run.run_id, SPEC)
    assert store.claim(*ids, "a", -1, 1, T0).won
    with faulted(Fault("UpdateItem")) as faults:
        assert not store.claim(*ids, "a", -1, 1, T0).won
    assert faults.fired() == 1


def test_a_write_whose_every_answer_is_lost_is_read_back_by_its_token(
    stores: tuple[DynamoStateStore, DynamoStateStore],
) -> None:
    """botocore gives up after its retries (all answered 500): the item tells."""
    _, store = stores
    run = new_run(SPEC, T0 - dt.timedelta(days=2))
    _queued(store, run)
    ids = (run.dag_id, run.run_id, SPEC)
    with faulted(Fault("UpdateItem", times=20)) as faults:
        claimed = store.claim(*ids, "a", -1, 1, T0)
    assert faults.fired() > 1 and claimed.won
    assert claimed.instance is not None and claimed.instance.state is TaskState.RUNNING


def test_a_write_refused_to_the_end_is_an_error_and_changes_nothing(
    stores: tuple[DynamoStateStore, DynamoStateStore],
) -> None:
    _, store = stores
    run = new_run(SPEC, T0 - dt.timedelta(days=3))
    _queued(store, run)
    ids = (run.dag_id, run.run_id, SPEC)
    with faulted(Fault("UpdateItem", REFUSE, times=20)), pytest.raises(StoreError):
        store.claim(*ids, "a", -1, 1, T0)
    ti = store.get_instance(run.dag_id, run.run_id, "a", -1)
    assert ti is not None and ti.state is TaskState.QUEUED


def test_a_wide_joins_count_moves_once_under_a_lost_answer_and_a_repeat(
    stores: tuple[DynamoStateStore, DynamoStateStore],
) -> None:
    """The settle that moves a wide join's counts: its answer lost (botocore
    retries it) and then the whole call repeated by the caller, one step."""
    _, store = stores
    run = new_run(WIDE, T0 - dt.timedelta(days=4))
    _wide_running(store, run)
    pending = _finish_w0(store, run, defer=True).pending
    with faulted(Fault("UpdateItem")) as faults:
        settled = store.settle_counters(run.dag_id, run.run_id, pending)
    assert faults.fired() == 1
    assert settled.fan_in == {"join": {TaskState.SUCCESS: 1}}
    again = store.settle_counters(run.dag_id, run.run_id, pending)
    assert again.fan_in == {"join": {TaskState.SUCCESS: 1}}
    assert again.progress.finished == 1
