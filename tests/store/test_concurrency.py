"""Racing schedulers on a real (threaded) moto server: every try is won exactly once.

In-process ``mock_aws`` loses conditional updates under threads (see
MOTO-NOTES.md), so races run against ThreadedMotoServer on loopback.

moto 5.2 does not isolate TransactWriteItems: it snapshots each table it
touches, checks and applies without a lock, and on a cancelled transaction
restores the snapshot, so two racing transactions can both pass a condition
and a cancelled one can undo another thread's write. DynamoDB documents
transactions as serializable; chalicelib/local/moto_fidelity.py (applied to every test)
restores that promise by running moto's write operations one at a time.
Conditions are still checked by moto; only the interleaving inside moto's own
code is removed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from moto.server import ThreadedMotoServer

from chalicelib.core.engine import Command, ExpandTask, ScheduleTask
from chalicelib.core.progress import RunProgress
from chalicelib.core.spec import ExecutorSpec
from chalicelib.core.states import TaskState
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import build_models
from tests.core.simulation import literal_mapping, make_spec
from tests.store.conftest import make_dynamo_store, store_settings
from tests.store.runs import T0, new_run

SCHEDULERS = 8
MAP_WIDTH = 12
SPEC = make_spec(
    {"a": ["m"], "b": ["m"], "c": ["m"], "m": []}, m={"mapping": literal_mapping(MAP_WIDTH)}
)


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def schedule(task_id: str, map_index: int = -1) -> ScheduleTask:
    return ScheduleTask(task_id, map_index, TaskState.NONE, 1, 1, "default_pool", 1, ExecutorSpec())


def test_racing_schedulers_start_each_try_once(endpoint: str) -> None:
    settings = store_settings(endpoint_url=endpoint)
    setup = make_dynamo_store(settings)
    run = new_run(SPEC)
    assert setup.create_run(run, SPEC)
    assert setup.start_run(run.dag_id, run.run_id, T0)
    commands: list[Command] = [
        schedule("a"),
        schedule("b"),
        schedule("c"),
        ExpandTask("m", MAP_WIDTH),
        *(schedule("m", i) for i in range(MAP_WIDTH)),
    ]
    barrier = threading.Barrier(SCHEDULERS)

    def scheduler(_: int) -> list[Command]:
        # A store of its own, as each Lambda container would have.
        store = DynamoStateStore(settings, models=build_models(settings))
        barrier.wait()
        return store.apply(run.dag_id, run.run_id, SPEC, commands, T0)

    with ThreadPoolExecutor(SCHEDULERS) as pool:
        results = list(pool.map(scheduler, range(SCHEDULERS)))

    wins = Counter(cmd for taken in results for cmd in taken)
    assert wins == Counter(commands), "every command must take effect exactly once"
    view = setup.run_view(run.dag_id, run.run_id, SPEC)
    summaries = view.summaries(list(SPEC.tasks))
    assert summaries["m"].mapped_count == MAP_WIDTH
    assert dict(summaries["m"].state_counts) == {}  # only finished states are tallied
    for index in range(MAP_WIDTH):
        ti = view.instance("m", index)
        assert ti is not None and (ti.state, ti.try_number) == (TaskState.QUEUED, 1)
    for task in "abc":
        ti = summaries[task].instance
        assert (ti.state, ti.try_number) == (TaskState.QUEUED, 1)
    total = len(SPEC.tasks) - 1 + MAP_WIDTH
    assert setup.run_progress(run.dag_id, run.run_id) == RunProgress(total, 0, 0)
