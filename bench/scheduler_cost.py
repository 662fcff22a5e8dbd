"""What does the serverless control plane cost per task, and how fast is the hand-off?

Runs whole DAG runs of instant no-op tasks through the production scheduler,
worker and DynamoDB store on moto (in-process), counting every AWS call by
operation. For chains and mapped fan-outs (1 -> N -> 1) of 10 ... 10,000 tasks
it prints:

- AWS calls per task by operation;
- DynamoDB calls per completion event (one worker invocation: claim, run,
  record, hand-off), mean and max;
- the sequential AWS calls on the hand-off path (from the write that records
  a success to the invoke that starts the downstream task, both included);
- control-plane cost per 1,000 tasks at on-demand prices.

The DAGs allow one run at a time and more active tries than they have tasks,
so the chain makes no slot claims (its width is provably 1), while the mapped
fan-out claims a max_active_tasks slot per try (a map's width is unknown
before it runs): that transaction is part of its figures.

Then it starts the local stack (moto server, warm worker processes) and
measures the hand-off latency of a chain of 50: downstream start minus
upstream end, from the timestamps the workers recorded.

Cost model (stated, not measured): DynamoDB $0.625 per million write and
$0.125 per million read request units; a strongly consistent read of an item
under 4 KB is 1 RRU (each BatchGetItem key counts), a write under 1 KB is 1
WRU plus 1 per GSI entry written or removed (the running-tries lease), a
transactional write 2 WRU per item. Lambda $0.20 per million requests plus
$0.0000166667 per GB-s, with an ASSUMED 512 MB and 60 ms per no-op worker
invocation and per scheduler batch (moto's in-process latency says nothing
about Lambda's). SQS $0.40 and EventBridge $1.00 per million requests; moto
cannot run Lambda, so worker invokes are counted at the executor.

Run: .venv/bin/python bench/scheduler_cost.py [--sizes 10,100,1000,10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import botocore.client  # noqa: E402

PRICE_WRU = 0.625 / 1e6
PRICE_RRU = 0.125 / 1e6
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_GB_SECOND = 0.0000166667
PRICE_SQS = 0.40 / 1e6
PRICE_EVENTBRIDGE = 1.00 / 1e6
ASSUMED_LAMBDA_GB = 0.5
ASSUMED_LAMBDA_SECONDS = 0.060


@dataclass
class Meter:
    """Every botocore call made in this process, with request units."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    rru: float = 0.0
    wru: float = 0.0
    log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service: str, op: str, params: dict[str, Any]) -> None:
        with self.lock:
            self.calls[(service, op)] += 1
            self.log.append((service, op))
            if service != "dynamodb":
                return
            if op in ("GetItem", "Query", "Scan"):
                self.rru += 1
            elif op == "BatchGetItem":
                self.rru += sum(len(t["Keys"]) for t in params["RequestItems"].values())
            elif op == "TransactWriteItems":
                self.wru += 2 * len(params["TransactItems"]) + _lease_writes(params)
            elif op in ("PutItem", "UpdateItem", "DeleteItem"):
                self.wru += 1 + _lease_writes({"TransactItems": [{"Update": params}]})


def _lease_writes(params: dict[str, Any]) -> int:
    """Entries of the sparse running-tries index written or removed.

    Entering RUNNING sets ``lease`` (one index write); leaving RUNNING removes it
    (one index delete). Other writes also say REMOVE lease, but on items that
    have none, which costs nothing.
    """
    count = 0
    for item in params.get("TransactItems", []):
        op = next(iter(item.values()))
        names = op.get("ExpressionAttributeNames") or {}
        lease = [k for k, v in names.items() if v == "lease"]
        if not lease:
            continue
        expression = op.get("UpdateExpression", "")
        set_part, _, remove_part = expression.partition("REMOVE")
        values = (op.get("ExpressionAttributeValues") or {}).values()
        leaving_running = any(v == {"S": "running"} for v in values)
        if any(k in set_part for k in lease) or (
            any(k in remove_part for k in lease) and leaving_running
        ):
            count += 1
    return count


METER = Meter()
_original_call = botocore.client.BaseClient._make_api_call


def _counting_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
    METER.record(self.meta.service_model.service_name, operation, params)
    return _original_call(self, operation, params)


botocore.client.BaseClient._make_api_call = _counting_call  # type: ignore[method-assign]


def make_dag(shape: str, n: int) -> Any:
    from chalicelib.sdk import DAG, task
    from operators.empty import EmptyOperator

    with DAG(f"{shape}_{n}", max_active_tasks=n + 2, max_active_runs=1) as dag:
        if shape == "chain":
            prev = None
            for i in range(n):
                t = EmptyOperator(task_id=f"t{i}")
                if prev is not None:
                    prev >> t
                prev = t
        else:

            @task
            def items() -> list[int]:
                return list(range(n - 2))

            @task
            def work(x: int) -> None:
                return None

            @task
            def done(results: list[Any]) -> int:
                return len(results)

            done(work.expand(x=items()))
    return dag


@dataclass
class ShapeResult:
    shape: str
    tasks: int
    calls: Counter[tuple[str, str]]
    per_event_dynamo: list[int]
    handoff_calls: list[int]
    rru: float
    wru: float
    lambda_requests: int
    sqs_requests: int
    state: str


def run_shape(shape: str, n: int) -> ShapeResult:
    import boto3  # type: ignore[import-untyped]
    from moto import mock_aws

    from chalicelib.core.spec import ExecutorSpec
    from chalicelib.executors.base import DispatchHandle, Executor
    from chalicelib.runtime.worker import WorkerDeps, handle_worker_message
    from chalicelib.scheduler.queue import SqsSchedulerQueue, decode
    from chalicelib.scheduler.service import Scheduler
    from chalicelib.store.base import DagRecord, DagVersionRecord
    from chalicelib.store.dynamodb import DynamoStateStore
    from chalicelib.store.models import build_models, create_tables
    from chalicelib.store.results import DynamoXComStore, build_result_model
    from chalicelib.store.settings import StoreSettings
    from tests.moto_support import faithful_transactions

    class CountedLambda(Executor):
        kind = "lambda"

        def __init__(self) -> None:
            self.pending: list[Any] = []

        def dispatch(self, message: Any, spec: ExecutorSpec) -> DispatchHandle:
            METER.record("lambda", "Invoke", {})
            self.pending.append(message)
            marks.append(len(METER.log))
            return DispatchHandle("lambda", message.label)

    class Bundles:
        def load_dag(self, bundle_key: str, fileloc: str, dag_id: str) -> Any:
            return dag

    dag = make_dag(shape, n)
    marks: list[int] = []
    with faithful_transactions(), mock_aws():
        settings = StoreSettings(stage="bench", bucket="bench-state")
        create_tables(build_models(settings))
        result_model = build_result_model(settings)
        result_model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=settings.bucket)
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="bench")["QueueUrl"]
        store = DynamoStateStore(settings, models=build_models(settings), s3_client=s3)
        executor = CountedLambda()
        clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        scheduler = Scheduler(
            store,
            SqsSchedulerQueue(sqs, url),
            dict.fromkeys(("lambda", "ecs", "local"), executor),
            clock=clock,
        )
        spec = dag.to_spec()
        store.put_dag_version(
            DagVersionRecord(spec.dag_id, "v1", spec.model_dump_json(by_alias=True), clock(), "b")
        )
        store.upsert_dag(DagRecord(spec.dag_id, current_version="v1"))
        deps = WorkerDeps(
            store=store,
            scheduler=scheduler,
            bundles=Bundles(),
            xcoms=lambda d, r: DynamoXComStore(
                d, r, model=result_model, s3_client=s3, bucket=settings.bucket
            ),
            clock=clock,
            heartbeat_seconds=3600,
        )
        run, _ = scheduler.trigger(spec.dag_id)
        METER.calls.clear()
        METER.rru = METER.wru = 0.0
        METER.log.clear()
        per_event: list[int] = []
        handoff: list[int] = []
        lambda_requests = 0
        original_transition = store.transition

        def marking_transition(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("expected") is not None and kwargs["expected"].value == "running":
                record_marks.append(len(METER.log))
            return original_transition(*args, **kwargs)

        record_marks: list[int] = []
        store.transition = marking_transition  # type: ignore[method-assign]
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                # An empty poll is the event source mapping's idle cost, not a task's.
                METER.calls[("sqs", "ReceiveMessage")] -= 1
                METER.log.pop()
            if batch:
                lambda_requests += 1
                for m in batch:
                    scheduler.handle(decode(m["Body"]))
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(batch)
                    ],
                )
                continue
            if not executor.pending:
                break
            message = executor.pending.pop(0)
            lambda_requests += 1
            start = len(METER.log)
            marks.clear()
            record_marks.clear()
            handle_worker_message(message, deps)
            events = METER.log[start:]
            per_event.append(sum(1 for service, _ in events if service == "dynamodb"))
            if record_marks and marks:
                # calls from the recording write to the downstream invoke, both included
                handoff.append(marks[0] - record_marks[-1])
        final = store.get_run(run.dag_id, run.run_id)
        return ShapeResult(
            shape=shape,
            tasks=n,
            calls=Counter(METER.calls),
            per_event_dynamo=per_event,
            handoff_calls=handoff,
            rru=METER.rru,
            wru=METER.wru,
            lambda_requests=lambda_requests,
            sqs_requests=sum(v for (s, _), v in METER.calls.items() if s == "sqs"),
            state=final.state.value if final else "missing",
        )


def cost_per_1000(r: ShapeResult) -> float:
    dynamo = r.wru * PRICE_WRU + r.rru * PRICE_RRU
    lam = r.lambda_requests * (
        PRICE_LAMBDA_REQUEST + ASSUMED_LAMBDA_GB * ASSUMED_LAMBDA_SECONDS * PRICE_GB_SECOND
    )
    sqs = r.sqs_requests * PRICE_SQS
    return (dynamo + lam + sqs) / r.tasks * 1000


def local_handoff(chain: int = 50) -> tuple[float, float, int]:
    """Median and p90 seconds from upstream end to downstream start on the local stack."""
    import tempfile

    from chalicelib import wiring
    from chalicelib.local.stack import LocalStack

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "dags").mkdir()
        (project / "operators").mkdir()
        (project / "dags" / "handoff_chain.py").write_text(
            "from chalicelib.sdk import DAG\n"
            "from operators.empty import EmptyOperator\n\n"
            'with DAG("handoff_chain") as dag:\n'
            "    prev = None\n"
            f"    for i in range({chain}):\n"
            '        t = EmptyOperator(task_id=f"t{i:02d}")\n'
            "        if prev is not None:\n"
            "            prev >> t\n"
            "        prev = t\n"
        )
        with LocalStack(workers=2, tick_seconds=60) as stack:
            report = stack.deploy(project)
            assert report.ok, report.problems
            run = stack.trigger("handoff_chain")
            final = stack.wait_for_run("handoff_chain", run.run_id, timeout=300)
            store = wiring.state_store()
            gaps = []
            for i in range(1, chain):
                up = store.get_instance(final.dag_id, final.run_id, f"t{i - 1:02d}", -1)
                down = store.get_instance(final.dag_id, final.run_id, f"t{i:02d}", -1)
                if up and down and up.end_date and down.start_date:
                    gaps.append((down.start_date - up.end_date).total_seconds())
    gaps.sort()
    return statistics.median(gaps), gaps[int(0.9 * (len(gaps) - 1))], len(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--shapes", default="chain,fanout")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[ShapeResult] = []
    print(
        f"{'shape':<8}{'tasks':>7}{'state':>9}{'ddb/evt mean':>14}{'max':>6}"
        f"{'handoff calls':>15}{'$/1k tasks':>12}"
    )
    for shape in args.shapes.split(","):
        for n in sizes:
            r = run_shape(shape, n)
            results.append(r)
            handoff = max(r.handoff_calls) if r.handoff_calls else 0
            print(
                f"{shape:<8}{n:>7}{r.state:>9}{statistics.mean(r.per_event_dynamo):>14.2f}"
                f"{max(r.per_event_dynamo):>6}{handoff:>15}{cost_per_1000(r):>12.5f}",
                flush=True,
            )
    print("\nAWS calls per task by operation:")
    for r in results:
        ops = ", ".join(f"{s}.{op} {v / r.tasks:.2f}" for (s, op), v in sorted(r.calls.items()))
        print(f"  {r.shape} {r.tasks}: {ops}")
    print("\nRequest units per task and cost split per 1,000 tasks:")
    for r in results:
        dyn = (r.wru * PRICE_WRU + r.rru * PRICE_RRU) / r.tasks * 1000
        lam = (
            r.lambda_requests
            / r.tasks
            * 1000
            * (PRICE_LAMBDA_REQUEST + ASSUMED_LAMBDA_GB * ASSUMED_LAMBDA_SECONDS * PRICE_GB_SECOND)
        )
        sqs = r.sqs_requests / r.tasks * 1000 * PRICE_SQS
        print(
            f"  {r.shape} {r.tasks}: WRU {r.wru / r.tasks:.2f}, RRU {r.rru / r.tasks:.2f}; "
            f"DynamoDB ${dyn:.5f} + Lambda ${lam:.5f} + SQS ${sqs:.5f} + EventBridge $0"
        )
    for shape in args.shapes.split(","):
        means = [
            statistics.mean(r.per_event_dynamo)
            for r in results
            if r.shape == shape and r.tasks >= 100
        ]
        if len(means) >= 2:
            print(
                f"\n{shape}: DynamoDB calls per completion event, max/min over sizes >= 100: "
                f"{max(means) / min(means):.3f} (target <= 1.2)"
            )
    if not args.skip_local:
        median, p90, edges = local_handoff()
        print(
            f"\nlocal stack hand-off, chain of 50 ({edges} edges): "
            f"median {median:.4f} s, p90 {p90:.4f} s (target median <= 0.05 s)"
        )


if __name__ == "__main__":
    main()
