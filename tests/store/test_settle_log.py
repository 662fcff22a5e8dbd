"""Counter settles (store.settles): one UpdateItem, never applied twice.

The run item's settle log tells a settle whose answer was lost whether it
landed; when the log cannot tell (no floor, or too many settles since it),
the move is not repeated and the stall net's recount repairs the counters.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.core.progress import RunProgress
from chalicelib.core.runs import DagRun
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.settles import KEEP
from tests.aws_faults import AwsFaults
from tests.core.simulation import make_spec
from tests.store.conftest import make_dynamo_store, store_settings
from tests.store.runs import T0, new_run, record_success

TASKS = 2 * KEEP + 8
SPEC = make_spec({f"t{i}": [] for i in range(TASKS)})
LATER = T0 + dt.timedelta(seconds=30)
_DAYS = itertools.count(1)


@pytest.fixture(scope="module")
def store() -> Iterator[DynamoStateStore]:
    with mock_aws():
        yield make_dynamo_store(store_settings(stage="settles", bucket="settles-state"))


def _run(store: DynamoStateStore) -> DagRun:
    run = new_run(SPEC, T0 + dt.timedelta(days=next(_DAYS)))
    assert store.create_run(run, SPEC)
    assert store.start_run(run.dag_id, run.run_id, T0)
    return run


def _recorded(store: DynamoStateStore, run: DagRun, task_id: str) -> Any:
    """The task claimed and its success recorded; its counters still owed."""
    ids = (run.dag_id, run.run_id, SPEC)
    assert store.claim(*ids, task_id, -1, 1, T0, direct=True).won
    recorded = record_success(store, SPEC, run, task_id, now=LATER)
    assert recorded.won and recorded.pending is not None
    return recorded.pending


def _settle(store: DynamoStateStore, run: DagRun, pending: Any) -> RunProgress:
    return store.settle_counters(run.dag_id, run.run_id, pending).progress


def test_each_settle_counts_once_and_the_log_stays_bounded(store: DynamoStateStore) -> None:
    run = _run(store)
    for i in range(TASKS):
        pending = _recorded(store, run, f"t{i}")
        assert _settle(store, run, pending).finished == i + 1
        assert _settle(store, run, pending).finished == i + 1  # a caller's repeat: no-op
        store.tidy_settles()  # as the worker does once it has handed off
    item = store._run_item(run.dag_id, run.run_id)
    assert int(item.sq) == TASKS
    assert KEEP <= len(item.sl) < 2 * KEEP
    assert store.run_progress(run.dag_id, run.run_id) == RunProgress(TASKS, TASKS, 0)


def test_a_settle_leaves_the_trim_for_later_yet_never_lets_the_log_grow_unbounded(
    store: DynamoStateStore,
) -> None:
    """The trim is a write of its own: it waits for ``tidy_settles`` (after the
    hand-off), and only a log no worker ever trimmed is trimmed in the settle."""
    run = _run(store)
    lengths = []
    for i in range(5 * KEEP):
        _settle(store, run, _recorded(store, run, f"extra{i}"))
        lengths.append(len(store._run_item(run.dag_id, run.run_id).sl))
    assert lengths[2 * KEEP] == 2 * KEEP + 1  # owed, not made on the settle's path
    assert max(lengths) == 4 * KEEP - 1  # the 4 * KEEP-th entry is trimmed at once
    store.tidy_settles()
    assert len(store._run_item(run.dag_id, run.run_id).sl) < 4 * KEEP


def test_botocore_sends_a_settle_once_and_the_log_recognises_the_landed_write(
    store: DynamoStateStore,
) -> None:
    run = _run(store)
    pending = _recorded(store, run, "t0")
    with AwsFaults(seed=1) as faults:
        faults.ambiguous("dynamodb", "UpdateItem", times=1)
        progress = _settle(store, run, pending)
    assert faults.fired() == 1
    assert faults.count("dynamodb", "UpdateItem") == 1  # no blind retry of the ADD
    assert progress.finished == 1
    assert store.run_progress(run.dag_id, run.run_id).finished == 1


def test_a_settle_refused_with_500_is_sent_again_when_the_floor_proves_it_did_not_land(
    store: DynamoStateStore,
) -> None:
    run = _run(store)
    floor = store.settle_floor(run.dag_id, run.run_id)
    assert floor == 0
    pending = _recorded(store, run, "t0")
    with AwsFaults(seed=2) as faults:
        faults.server_error("dynamodb", "UpdateItem", times=1)  # 500, not applied
        progress = _settle(store, run, _with_floor(pending, floor))
    assert faults.fired() == 1
    assert progress.finished == 1
    assert int(store._run_item(run.dag_id, run.run_id).sq) == 1


@pytest.mark.parametrize("floor", [None, "stale"])
def test_an_unknowable_settle_is_never_repeated_and_the_recount_repairs_it(
    store: DynamoStateStore, floor: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 the log cannot explain: no floor, or KEEP settles since it. Not
    repeating may leave the counters one short (never one over); the stall
    net's recount, from the instances, sets them right."""
    run = _run(store)
    given = None
    if floor == "stale":
        given = store.settle_floor(run.dag_id, run.run_id)
        for i in range(1, KEEP + 1):
            _settle(store, run, _recorded(store, run, f"t{i}"))
    pending = _recorded(store, run, "t0")
    with caplog.at_level(logging.WARNING, "slipstream.store"), AwsFaults(seed=3) as faults:
        faults.server_error("dynamodb", "UpdateItem", times=1)
        progress = _settle(store, run, _with_floor(pending, given))
    assert faults.fired() == 1
    done_before = 0 if floor is None else KEEP
    assert progress.finished == done_before  # short by the move that never landed
    assert "not repeating it" in caplog.text
    assert store.recount(run.dag_id, run.run_id, SPEC).finished == done_before + 1


def _with_floor(pending: Any, floor: int | None) -> Any:
    from dataclasses import replace

    return replace(pending, settle_floor=floor)
