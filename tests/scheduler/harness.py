"""A deterministic stand-in for Lambda's event plumbing, for scheduler tests.

Queue messages and worker invocations are collected and run by the test, one
at a time, in an order the test controls; delays advance a fake clock instead
of sleeping. The state store is any StateStore (memory or DynamoDB on moto).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import DagSpec, ExecutorSpec
from chalicelib.executors.base import DispatchHandle, Executor
from chalicelib.runtime.worker import WorkerDeps, WorkerOutcome, handle_worker_message
from chalicelib.runtime.xcom import InMemoryXComStore
from chalicelib.scheduler.queue import InMemorySchedulerQueue
from chalicelib.scheduler.service import Scheduler
from chalicelib.store.base import DagRecord, DagVersionRecord, StateStore


class FakeClock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class CollectingExecutor(Executor):
    """Records invocations; the harness runs them (or a test drops one to 'kill' it)."""

    kind = "lambda"

    def __init__(self) -> None:
        self.invocations: list[WorkerMessage] = []
        self.all: list[WorkerMessage] = []

    def dispatch(self, message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        self.invocations.append(message)
        self.all.append(message)
        return DispatchHandle("lambda", message.label)


class DictBundles:
    """Bundles by DAG id: the test already holds the imported DAG objects."""

    def __init__(self, dags: dict[str, Any]):
        self.dags = dags

    def load_dag(self, bundle_key: str, fileloc: str, dag_id: str) -> Any:
        return self.dags[dag_id]


@dataclass
class Stack:
    store: StateStore
    clock: FakeClock
    queue: InMemorySchedulerQueue = field(default_factory=InMemorySchedulerQueue)
    executor: CollectingExecutor = field(default_factory=CollectingExecutor)
    dags: dict[str, Any] = field(default_factory=dict)
    xcoms: dict[tuple[str, str], InMemoryXComStore] = field(default_factory=dict)
    outcomes: list[WorkerOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        executors = {"lambda": self.executor, "ecs": self.executor, "local": self.executor}
        self.scheduler = Scheduler(self.store, self.queue, executors, clock=self.clock)
        self.deps = WorkerDeps(
            store=self.store,
            scheduler=self.scheduler,
            bundles=DictBundles(self.dags),
            xcoms=self._xcoms,
            clock=self.clock,
            heartbeat_seconds=3600,
        )

    def _xcoms(self, dag_id: str, run_id: str) -> InMemoryXComStore:
        return self.xcoms.setdefault((dag_id, run_id), InMemoryXComStore())

    def deploy(self, dag: Any, *, paused: bool = False) -> DagSpec:
        spec = dag.to_spec()
        self.dags[spec.dag_id] = dag
        self.store.put_dag_version(
            DagVersionRecord(
                dag_id=spec.dag_id,
                version=spec.content_hash,
                spec_json=spec.model_dump_json(by_alias=True),
                created_at=self.clock(),
                bundle_key="bundles/test.zip",
            )
        )
        from chalicelib.core.data_intervals import TimeRestriction

        info = spec.timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(spec.start_date, spec.end_date, spec.catchup),
            now=self.clock(),
        )
        self.store.upsert_dag(
            DagRecord(
                dag_id=spec.dag_id,
                current_version=spec.content_hash,
                paused=paused,
                next_due_at=None if info is None else info.run_after,
            )
        )
        return spec

    def claim(self, message: WorkerMessage) -> bool:
        """Claim the message's try as its worker would, and run nothing (a worker
        that dies right after its claim)."""
        spec = self.scheduler.specs.get(message.dag_id, message.version)
        return self.store.claim(
            message.dag_id,
            message.run_id,
            spec,
            message.task_id,
            message.map_index,
            message.try_number,
            self.clock(),
            direct=message.direct,
        ).won

    def run_worker(self, message: WorkerMessage) -> WorkerOutcome:
        outcome = handle_worker_message(message, self.deps)
        self.outcomes.append(outcome)
        return outcome

    def settle(
        self,
        *,
        max_steps: int = 100_000,
        drop: Callable[[WorkerMessage], bool] | None = None,
    ) -> None:
        """Run queue messages and invocations until nothing is left.

        Worker invocations go first (the hand-off), then due queue messages;
        a delayed message moves the clock to its due time.
        """
        steps = 0
        while True:
            steps += 1
            if steps > max_steps:
                raise AssertionError("the stack did not settle")
            if self.executor.invocations:
                message = self.executor.invocations.pop(0)
                if drop is not None and drop(message):
                    continue
                self.run_worker(message)
                continue
            if not self.queue.pending:
                return
            self.queue.pending.sort(key=lambda item: item[1])
            message, delay = self.queue.pending.pop(0)
            if delay:
                self.clock.advance(delay)
                for i, (m, d) in enumerate(self.queue.pending):
                    self.queue.pending[i] = (m, max(0, d - delay))
            self.scheduler.handle(message)

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        spec = self.scheduler.specs.get(dag_id, self.store.get_run(dag_id, run_id).version)
        view = self.store.run_view(dag_id, run_id, spec)
        result: dict[str, str] = {}
        summaries = view.summaries(list(spec.tasks))
        for tid, summary in summaries.items():
            if summary.mapped_count is None:
                result[tid] = summary.instance.state.value
            else:
                for i in range(summary.mapped_count):
                    ti = view.instance(tid, i)
                    result[f"{tid}[{i}]"] = "none" if ti is None else ti.state.value
        return result


def mapped_dag(dag_id: str, width: int, *, fail_first_try_of: int | None = None, **dag_args: Any):
    """items -> work.expand(x=items) -> done (the sum), one run at a time; the
    index ``fail_first_try_of`` fails its first try and succeeds on its retry."""
    from chalicelib.sdk import DAG, task

    failed: list[int] = []
    with DAG(dag_id, max_active_runs=1, **dag_args) as dag:

        @task
        def items() -> list[int]:
            return list(range(width))

        @task(retries=1, retry_delay=dt.timedelta(seconds=0))
        def work(x: int) -> int:
            if x == fail_first_try_of and not failed:
                failed.append(x)
                raise ValueError(f"first try of index {x} fails")
            return x

        @task
        def done(values: list[int]) -> int:
            return sum(values)

        done(work.expand(x=items()))
    return dag
