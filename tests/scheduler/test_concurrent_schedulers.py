"""Two schedulers, racing on the same events, against one DynamoDB (moto server).

Every queue message is handled by both schedulers at once, every worker
invocation is delivered twice at once, and every finished task also produces
a duplicate "task finished" event. Whatever the interleaving, each try must
start exactly once and the run must end in the state the DAG implies.

With 16 runs allowed every try claims a max_active_tasks slot and is queued
before it is dispatched; with one run the expanded map fits the limit, so
workers dispatch the next tries directly and the claim alone decides who
starts them (a racing scheduler may queue and dispatch one too: its worker
or the direct one starts it, never both).
"""

from __future__ import annotations

import datetime as dt
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from moto.server import ThreadedMotoServer

from chalicelib.core.messages import TaskFinishedMessage, WorkerMessage
from chalicelib.core.states import DagRunState
from chalicelib.runtime.worker import WorkerDeps, handle_worker_message
from chalicelib.runtime.xcom import InMemoryXComStore
from chalicelib.scheduler.queue import InMemorySchedulerQueue
from chalicelib.scheduler.service import Scheduler
from chalicelib.sdk import DAG, TriggerRule, task
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import build_models
from operators.empty import EmptyOperator
from tests.scheduler.harness import CollectingExecutor, DictBundles, FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings


class LockedExecutor(CollectingExecutor):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def dispatch(self, message, spec):  # type: ignore[no-untyped-def]
        with self.lock:
            return super().dispatch(message, spec)


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # Moto's backends are process-wide: start from empty tables, whatever ran before.
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", b""))
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.mark.parametrize("max_active_runs", [16, 1])
def test_racing_schedulers_start_every_try_once(endpoint: str, max_active_runs: int) -> None:
    runs_of: Counter[str] = Counter()
    lock = threading.Lock()

    def count(name: str) -> None:
        with lock:
            runs_of[name] += 1

    with DAG("race", max_active_runs=max_active_runs) as dag:

        @task
        def start() -> list[int]:
            count("start")
            return list(range(12))

        @task
        def work(x: int) -> int:
            count(f"work{x}")
            return x

        @task
        def side(i: int) -> None:
            count(f"side{i}")

        @task(trigger_rule=TriggerRule.ALL_SUCCESS)
        def join(values: list[int]) -> None:
            count("join")
            assert sorted(values) == list(range(12))

        first = start()
        joined = join(work.expand(x=first))
        for i in range(4):
            first >> side.override(task_id=f"side{i}")(i) >> joined
        joined >> EmptyOperator(task_id="end")

    clock = FakeClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    settings = store_settings(endpoint_url=endpoint)
    setup_store = make_dynamo_store(settings)
    setup = Stack(store=setup_store, clock=clock)
    setup.deploy(dag)

    queue = InMemorySchedulerQueue()
    executor = LockedExecutor()
    xcoms = InMemoryXComStore()
    schedulers = []
    deps = []
    for _ in range(2):
        store = DynamoStateStore(settings, models=build_models(settings))
        executors = dict.fromkeys(("lambda", "ecs", "local"), executor)
        scheduler = Scheduler(store, queue, executors, clock=clock)
        schedulers.append(scheduler)
        deps.append(
            WorkerDeps(
                store=store,
                scheduler=scheduler,
                bundles=DictBundles({"race": dag}),
                xcoms=lambda _d, _r: xcoms,
                clock=clock,
                heartbeat_seconds=3600,
            )
        )

    run, _ = schedulers[0].trigger("race")
    claims: Counter[tuple[str, int, int]] = Counter()
    with ThreadPoolExecutor(4) as pool:
        for _ in range(10_000):
            if queue.pending:
                message, _delay = queue.pending.pop(0)
                list(pool.map(lambda s, m=message: s.handle(m), schedulers))
                continue
            with executor.lock:
                batch, executor.invocations = executor.invocations, []
            if not batch:
                break
            for invocation in batch:
                outcomes = list(pool.map(lambda d, m=invocation: handle_worker_message(m, d), deps))
                try_key = (invocation.task_id, invocation.map_index, invocation.try_number)
                claims[try_key] += sum(o.claimed for o in outcomes)
                queue.send(_finished(invocation))
        else:
            raise AssertionError("did not settle")

    assert len(claims) == 1 + 12 + 4 + 1 + 1
    assert set(claims.values()) == {1}, "a try was started twice (or never)"
    queued = Counter((m.task_id, m.map_index, m.try_number) for m in executor.all if not m.direct)
    assert set(queued.values()) <= {1}, "a queued try was dispatched twice"
    if max_active_runs == 1:
        assert sum(m.direct for m in executor.all) >= 12, "the map was not dispatched directly"
    assert set(runs_of.values()) == {1}, "some task body ran twice"
    final = setup_store.get_run("race", run.run_id)
    assert final is not None and final.state is DagRunState.SUCCESS


def _finished(message: WorkerMessage) -> TaskFinishedMessage:
    return TaskFinishedMessage(
        dag_id=message.dag_id,
        run_id=message.run_id,
        task_id=message.task_id,
        map_index=message.map_index,
        try_number=message.try_number,
    )
