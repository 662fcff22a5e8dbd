"""How fast does the API answer the pages the UI asks for, and does the work per
request stay flat as the tables grow?

Serves the real Chalice app on the local stack (moto server, as ``slipstream
dev`` and tests/api/served.py do), deploys the example DAGs and a generated
DAG of 10,000 EmptyOperator tasks (a chain), triggers one run of it through
the API, and seeds runs of ``etl_hourly`` straight through the store
(``DynamoStateStore.create_run`` with the deployed spec: no execution). Then,
at 100 and again at 1,000 seeded runs, it times each endpoint (p50, p95 over
``--requests`` calls after a warm-up) and counts the DynamoDB calls each
request makes.

Counting: every pynamodb and boto3 call goes through botocore's
``BaseClient._make_api_call``; the meter wraps it and counts DynamoDB calls
made on the HTTP server's request threads only, so the stack's own threads
(queue poller, the chain's hand-offs) do not count. The chain run advances in
the background while the figures are taken, as a live deployment would.

Targets: p95 <= 100 ms for a page of 100, and DynamoDB calls per request
independent of how many runs the table holds. Latencies are moto's on this
machine, not DynamoDB's: they compare endpoints and sizes, not clouds.

Run: .venv/bin/python bench/api_latency.py [--requests 50] [--tasks 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import botocore.client  # noqa: E402
import requests  # noqa: E402

SEED_DAG = "etl_hourly"
BIG_DAG = "big_chain"
TARGET_P95_MS = 100.0
BIG_DAG_FILE = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2024, 1, 1), tags=["bench"]):
    previous = None
    for index in range({tasks}):
        task = EmptyOperator(task_id=f"t{{index:05d}}")
        if previous is not None:
            previous >> task
        previous = task
"""


class DynamoMeter:
    """DynamoDB calls made while serving requests, by operation."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0
        self.by_operation: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._original = botocore.client.BaseClient._make_api_call

    def install(self) -> None:
        meter, original = self, self._original

        def metered(client: Any, operation: str, params: Any) -> Any:
            if client.meta.service_model.service_name != "dynamodb" or not _serving():
                return original(client, operation, params)
            started = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                with meter._lock:
                    meter.calls[operation] += 1
                    spent = time.perf_counter() - started
                    meter.seconds += spent
                    meter.by_operation[operation] += spent

        botocore.client.BaseClient._make_api_call = metered  # type: ignore[method-assign]

    def take(self) -> tuple[Counter[str], float]:
        """The calls since the last take, and the seconds spent in them."""
        with self._lock:
            taken, self.calls = self.calls, Counter()
            seconds, self.seconds = self.seconds, 0.0
        return taken, seconds


def _serving() -> bool:
    """A request thread of the HTTP server (socketserver's ThreadingMixIn names them)."""
    return "process_request_thread" in threading.current_thread().name


def _write_big_project(root: Path, tasks: int) -> Path:
    (root / "dags").mkdir(parents=True)
    (root / "dags" / f"{BIG_DAG}.py").write_text(BIG_DAG_FILE.format(dag_id=BIG_DAG, tasks=tasks))
    (root / "operators").symlink_to(ROOT / "operators")
    return root


def _seed_runs(start: int, stop: int) -> None:
    """Runs of SEED_DAG written as the scheduler writes them, without running them."""
    from chalicelib import wiring
    from chalicelib.api import deps
    from chalicelib.core.runs import DagRun, RunType
    from chalicelib.core.states import DagRunState

    store = wiring.state_store()
    record = store.get_dag(SEED_DAG)
    assert record is not None and record.current_version
    spec = deps.specs().get(SEED_DAG, record.current_version)
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for index in range(start, stop):
        when = base + dt.timedelta(hours=index)
        run = DagRun(
            dag_id=SEED_DAG,
            run_id=f"bench__{index:05d}",
            run_type=RunType.SCHEDULED,
            logical_date=when,
            data_interval_start=when - dt.timedelta(hours=1),
            data_interval_end=when,
            run_after=when,
            version=record.current_version,
            state=DagRunState.SUCCESS if index % 5 else DagRunState.FAILED,
            start_date=when,
            end_date=when + dt.timedelta(minutes=3),
            tenant=record.tenant,
        )
        assert store.create_run(run, spec)


def _measure(
    url: str, headers: dict[str, str], path: str, count: int, meter: DynamoMeter
) -> dict[str, Any]:
    session = requests.Session()
    session.headers.update(headers)
    for _ in range(3):  # warm-up: spec cache, connections
        assert session.get(url + path, timeout=60).status_code == 200, path
    meter.take()
    millis: list[float] = []
    calls: list[int] = []
    in_dynamo: list[float] = []
    operations: Counter[str] = Counter()
    meter.by_operation = Counter()
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(url + path, timeout=60)
        millis.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.text[:200])
        taken, seconds = meter.take()
        calls.append(sum(taken.values()))
        in_dynamo.append(seconds * 1000)
        operations.update(taken)
    millis.sort()
    return {
        "p50": statistics.median(millis),
        "p95": millis[max(0, round(0.95 * len(millis)) - 1)],
        "calls": statistics.mean(calls),
        "max_calls": max(calls),
        "ddb_ms": statistics.median(in_dynamo),
        "ops": {
            op: (n / count, meter.by_operation[op] * 1000 / count)
            for op, n in sorted(operations.items())
        },
    }


def _endpoints(big_run: str, task: str) -> list[tuple[str, str]]:
    seeded = "bench__00007"
    return [
        ("GET /dags?limit=100", "/dags?limit=100"),
        ("GET /dags/{id}", f"/dags/{SEED_DAG}"),
        ("GET /dags/{id}/dagRuns?limit=100", f"/dags/{SEED_DAG}/dagRuns?limit=100"),
        ("GET /dags/{id}/dagRuns/{run}", f"/dags/{SEED_DAG}/dagRuns/{seeded}"),
        (
            "GET /dags/{big}/dagRuns/{run}/taskInstances?limit=100",
            f"/dags/{BIG_DAG}/dagRuns/{big_run}/taskInstances?limit=100",
        ),
        ("GET /dags/{big}/tasks/{task}", f"/dags/{BIG_DAG}/tasks/{task}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--sizes", default="100,1000", help="seeded runs at each measurement")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    from chalicelib import wiring
    from chalicelib.api import deps
    from chalicelib.deploy.deployer import deploy
    from chalicelib.local.api_server import ApiServer
    from chalicelib.local.stack import LocalStack

    meter = DynamoMeter()
    meter.install()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(workers=1, tick_seconds=3600) as stack:
        started = time.perf_counter()
        assert stack.deploy(ROOT).ok
        big = _write_big_project(Path(tmp) / "big", args.tasks)
        report = deploy(
            [str(big / "dags")],
            store=wiring.state_store(),
            bundles=wiring.bundle_store(),
            bundle_root=str(big),
            now=wiring.utc_now(),
            stage="local",
        )
        assert report.ok, report.problems
        print(f"deployed {BIG_DAG} ({args.tasks} tasks) in {time.perf_counter() - started:.1f}s")
        server = ApiServer(port=0).start()
        try:
            _, key = deps.api_keys().create(
                tenant="default", role="viewer", now=wiring.utc_now(), name="bench"
            )
            headers = {"Authorization": f"Bearer {key}"}
            admin = dict(headers)
            _, admin_key = deps.api_keys().create(
                tenant="default", role="user", now=wiring.utc_now(), name="bench-user"
            )
            admin["Authorization"] = f"Bearer {admin_key}"
            trigger = requests.post(
                f"{server.url}/api/v2/dags/{BIG_DAG}/dagRuns", json={}, headers=admin, timeout=120
            )
            assert trigger.status_code == 200, trigger.text
            big_run = trigger.json()["dag_run_id"]
            task = f"t{args.tasks // 2:05d}"
            results: dict[int, dict[str, dict[str, Any]]] = {}
            seeded = 0
            for size in sizes:
                started = time.perf_counter()
                _seed_runs(seeded, size)
                print(f"seeded runs {seeded}..{size} in {time.perf_counter() - started:.1f}s")
                seeded = size
                results[size] = {
                    label: _measure(server.url + "/api/v2", headers, path, args.requests, meter)
                    for label, path in _endpoints(big_run, task)
                }
        finally:
            server.stop()
    _print(results, args.requests)
    return 0


def _print(results: dict[int, dict[str, dict[str, Any]]], count: int) -> None:
    sizes = sorted(results)
    labels = list(results[sizes[0]])
    width = max(len(label) for label in labels)
    print(f"\n{count} requests per endpoint; target p95 <= {TARGET_P95_MS:.0f} ms per page")
    print("ddb/req: DynamoDB calls per request; in ddb: median ms a request spent in them")
    header = f"{'endpoint':<{width}}"
    for size in sizes:
        header += f" | {size:>5} runs: p50 ms  p95 ms  ddb/req  in ddb"
    print(header + " | ok")
    for label in labels:
        line = f"{label:<{width}}"
        worst = 0.0
        for size in sizes:
            r = results[size][label]
            worst = max(worst, r["p95"])
            line += f" |            {r['p50']:6.1f}  {r['p95']:6.1f}  {r['calls']:7.2f}"
            line += f"  {r['ddb_ms']:6.1f}"
        flat = len({results[s][label]["calls"] for s in sizes}) == 1
        verdict = "yes" if worst <= TARGET_P95_MS and flat else "NO"
        print(line + f" | {verdict}{'' if flat else ' (calls grow)'}")
    print("\nDynamoDB calls per request by operation (mean ms in them), at the largest size:")
    for label in labels:
        ops = ", ".join(
            f"{op} {n:g} ({ms:.1f} ms)" for op, (n, ms) in results[sizes[-1]][label]["ops"].items()
        )
        print(f"  {label:<{width}}  {ops}")


if __name__ == "__main__":
    sys.exit(main())
