"""What does the serverless control plane cost per task, and how fast is the hand-off?

Runs whole DAG runs of instant no-op tasks through the production scheduler,
worker and DynamoDB store on moto (in-process), counting every AWS call by
operation. For chains, mapped fan-outs (1 -> N -> 1) and wide fan-ins (1 -> N
distinct unmapped tasks -> 1 join) of 10 ... 10,000 tasks it prints:

- AWS calls per task by operation;
- DynamoDB calls per completion event (one worker invocation: claim, run,
  record, hand-off), mean and max;
- the sequential AWS calls on the hand-off path (from the write that records
  a success to the invoke that starts the downstream task, both included);
- control-plane cost per 1,000 tasks at on-demand prices.

The DAGs allow one run at a time and more active tries than they have
tasks, so no try claims a slot: the chain's width is provably 1, and a try of
the map is bounded by the map's expanded width (its upstream and downstream
never overlap it). The hand-off dispatches each first try directly (its
worker claims it from NONE). ``--shapes limited`` adds the mapped fan-out
under Airflow's default max_active_tasks of 16: the map runs through a
window of 16 indices (core.map_window), each finished try starting the next
index from the tally its settle answers with.

Then it starts the local stack (moto server, warm worker processes) and
measures the hand-off latency of a chain of 50: downstream start minus
upstream end, from the timestamps the workers recorded.

Cost model: DynamoDB $0.625 per million write and $0.125 per million read
request units, computed from the items themselves as DynamoDB bills them: a
read is one unit per 4 KB it returns (each BatchGetItem item on its own,
half for eventually consistent and index reads); a write is one unit per KB
of the larger of the item before and after it, twice that in a transaction,
plus one per global-secondary-index entry it puts or deletes (two when an
index key changes). The meter looks at each written item before and after
the write, uncounted. S3 $0.005 per thousand PUTs and $0.0004 per thousand
GETs. Lambda $0.20 per million requests plus
$0.0000166667 per GB-s, with an ASSUMED 512 MB and 60 ms per no-op worker
invocation and per scheduler batch (moto's in-process latency says nothing
about Lambda's). SQS $0.40 and EventBridge $1.00 per million requests; moto
cannot run Lambda, so worker invokes are counted at the executor.

Run: .venv/bin/python bench/scheduler_cost.py [--sizes 10,100,1000,10000]
     [--shapes chain,fanout,limited,wide] [--skip-local]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
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
PRICE_S3_PUT = 0.005 / 1e3
PRICE_S3_GET = 0.0004 / 1e3
ASSUMED_LAMBDA_GB = 0.5
ASSUMED_LAMBDA_SECONDS = 0.060


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, as its docs define it."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.strip("-").replace(".", "").lstrip("0")) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    if kind in ("SS", "BS"):
        return sum(len(v if kind == "BS" else v.encode()) for v in inner)
    if kind == "NS":
        return sum(len(v) // 2 + 1 for v in inner)
    raise ValueError(kind)


def read_units(items: list[dict[str, Any]], consistent: bool) -> float:
    """One request's read units: 4 KB steps of what it read, halved when eventual."""
    units = max(1, math.ceil(sum(item_size(i) for i in items) / 4096))
    return units if consistent else units / 2


@dataclass
class Meter:
    """Every botocore call made in this process, with DynamoDB request units
    computed from the items read and written (before and after each write), and
    the writes each global secondary index makes (put, delete, or both when a
    key changes), as DynamoDB bills them."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    rru: float = 0.0
    wru: float = 0.0
    log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    indexes: dict[str, list[tuple[tuple[str, ...], bool]]] = field(default_factory=dict)

    def count(self, service: str, op: str) -> None:
        with self.lock:
            self.calls[(service, op)] += 1
            self.log.append((service, op))

    def add(self, rru: float = 0.0, wru: float = 0.0) -> None:
        with self.lock:
            self.rru += rru
            self.wru += wru


def _metered_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
    service = client.meta.service_model.service_name
    METER.count(service, operation)
    if service != "dynamodb":
        return _original_call(client, operation, params)
    writes = _write_targets(operation, params)
    before = [_peek(client, table, key) for table, key in writes]
    response = _original_call(client, operation, params)
    if operation in ("GetItem",):
        item = response.get("Item")
        METER.add(rru=read_units([item] if item else [], bool(params.get("ConsistentRead"))))
    elif operation in ("Query", "Scan"):
        eventual = "IndexName" in params or not params.get("ConsistentRead")
        METER.add(rru=read_units(response.get("Items", []), not eventual))
    elif operation == "BatchGetItem":
        for table, items in response.get("Responses", {}).items():
            consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
            METER.add(rru=sum(read_units([i], consistent) for i in items))
    elif writes:
        per_item = 2 if operation == "TransactWriteItems" else 1
        for (table, key), old in zip(writes, before, strict=True):
            new = _peek(client, table, key)
            size = max(item_size(old) if old else 0, item_size(new) if new else 0)
            units = per_item * max(1, math.ceil(size / 1024))
            METER.add(wru=units + _index_writes(client, table, old, new))
    return response


def _write_targets(operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if operation in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], params["Key"])]
    if operation == "PutItem":
        return [(params["TableName"], _key_of(params["TableName"], params["Item"]))]
    if operation == "TransactWriteItems":
        found = []
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            if kind == "ConditionCheck":
                continue
            key = body["Key"] if "Key" in body else _key_of(body["TableName"], body["Item"])
            found.append((body["TableName"], key))
        return found
    if operation == "BatchWriteItem":
        found = []
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    found.append((table, _key_of(table, request["PutRequest"]["Item"])))
                else:
                    found.append((table, request["DeleteRequest"]["Key"]))
        return found
    return []


_KEYS: dict[str, tuple[str, ...]] = {}


def _describe(client: Any, table: str) -> None:
    if table in _KEYS:
        return
    description = _original_call(client, "DescribeTable", {"TableName": table})["Table"]
    _KEYS[table] = tuple(k["AttributeName"] for k in description["KeySchema"])
    METER.indexes[table] = [
        (
            tuple(k["AttributeName"] for k in index["KeySchema"]),
            index["Projection"]["ProjectionType"] == "ALL",
        )
        for index in description.get("GlobalSecondaryIndexes", [])
    ]


def _key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in _KEYS.get(table, ())} if table in _KEYS else item


def _peek(client: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The item as stored now, read without being counted (the meter's own look)."""
    _describe(client, table)
    key = {name: key[name] for name in _KEYS[table] if name in key}
    found = _original_call(client, "GetItem", {"TableName": table, "Key": key})
    return found.get("Item")


def _index_writes(
    client: Any, table: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> int:
    writes = 0
    for keys, projects_all in METER.indexes.get(table, []):
        was = old is not None and all(k in old for k in keys)
        now = new is not None and all(k in new for k in keys)
        if was and now:
            if any(old[k] != new[k] for k in keys):  # type: ignore[index]
                writes += 2  # the entry moves: a delete and a put
            elif projects_all and old != new:
                writes += 1
        elif was or now:
            writes += 1
    return writes


METER = Meter()
_original_call = botocore.client.BaseClient._make_api_call
botocore.client.BaseClient._make_api_call = _metered_call  # type: ignore[method-assign]


def make_dag(shape: str, n: int) -> Any:
    from chalicelib.sdk import DAG, task
    from operators.empty import EmptyOperator

    limit = 16 if shape == "limited" else n + 2
    with DAG(f"{shape}_{n}", max_active_tasks=limit, max_active_runs=1) as dag:
        if shape == "chain":
            prev = None
            for i in range(n):
                t = EmptyOperator(task_id=f"t{i}")
                if prev is not None:
                    prev >> t
                prev = t
        elif shape == "wide":
            # 1 -> N distinct unmapped tasks -> 1 join (N = n - 2)
            start = EmptyOperator(task_id="start")
            middle = [EmptyOperator(task_id=f"w{i}") for i in range(n - 2)]
            join = EmptyOperator(task_id="join")
            start >> middle
            middle >> join
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
    from chalicelib.local.moto_fidelity import faithful_transactions
    from chalicelib.runtime.worker import WorkerDeps, handle_worker_message
    from chalicelib.scheduler.queue import SqsSchedulerQueue, decode
    from chalicelib.scheduler.service import Scheduler
    from chalicelib.store.base import DagRecord, DagVersionRecord
    from chalicelib.store.dynamodb import DynamoStateStore
    from chalicelib.store.models import build_models, create_tables
    from chalicelib.store.results import DynamoXComStore, build_result_model
    from chalicelib.store.settings import StoreSettings

    class CountedLambda(Executor):
        kind = "lambda"

        def __init__(self) -> None:
            self.pending: list[Any] = []

        def dispatch(self, message: Any, spec: ExecutorSpec) -> DispatchHandle:
            METER.count("lambda", "Invoke")
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
    return (dynamo + lam + sqs + s3_cost(r)) / r.tasks * 1000


def s3_cost(r: ShapeResult) -> float:
    return sum(
        n * (PRICE_S3_GET if op.startswith(("Get", "Head")) else PRICE_S3_PUT)
        for (service, op), n in r.calls.items()
        if service == "s3"
    )


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
        s3 = s3_cost(r) / r.tasks * 1000
        print(
            f"  {r.shape} {r.tasks}: WRU {r.wru / r.tasks:.2f}, RRU {r.rru / r.tasks:.2f}; "
            f"DynamoDB ${dyn:.5f} + Lambda ${lam:.5f} + SQS ${sqs:.5f} + S3 ${s3:.5f} "
            "+ EventBridge $0"
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
