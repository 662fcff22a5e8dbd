"""How many tasks a second does the local stack start, and how long is a hand-off under load?

Starts ``--runs`` runs (default 100) of one ``--tasks``-task DAG (default 100)
at once on the local stack (moto server, scheduler threads, ``--workers`` warm
worker processes) and prints:

- tasks started per second: overall (first trigger -> last start) and in
  steady state (between the 10th and 90th percentile of starts);
- upstream end -> downstream start, p50/p99/max over every edge of every run;
- wall time: triggering, until every run ended, and each run's duration.

DAG shape: ``--chains`` parallel chains (default 10) of tasks/chains tasks
each, no edges between chains: every task but a chain's head starts by a
hand-off from its upstream's worker. Tasks do nothing but append their own
start to a file (time.time(), as the chaos suite's DAGs do): starts are
measured independently of the store, ends are the ``end_date`` the store
recorded. max_active_runs and max_active_tasks are set high enough that no
try waits for a slot: this measures the control plane, not the limits.

For reference, Airflow's scheduler tops out around 500-1,000 task instances
a second (apache/airflow#31185) and shows tens of seconds from queued to
running under load (apache/airflow#55937). Locally, moto on 2 cores is the
ceiling; ``--profile`` says where the stack process's time goes: the AWS
calls moto served by operation (count, mean and total ms inside moto),
the CPU of the stack process and of the workers, and a sampling profile of
the stack process's threads (the code they were running, by package and by
function, idle waits left out).

Run: .venv/bin/python bench/throughput.py [--runs 100] [--tasks 100] [--chains 10]
     [--workers 3] [--profile] [--quick]
(--quick: 10 runs of 50 tasks, about 15 seconds.)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECORD_ENV = "THROUGHPUT_RECORD"
DAG_ID = "throughput"

DAG_SOURCE = '''\
"""Parallel chains of trivially short tasks; each records its own start."""

import datetime as dt
import json
import os
import time

from chalicelib.sdk import DAG, task


@task
def step(ti=None) -> None:
    line = json.dumps({{"run": ti.run_id, "task": ti.task_id, "at": time.time()}})
    fd = os.open(os.environ["{record}"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


with DAG(
    "{dag_id}",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs={runs},
    max_active_tasks={slots},
):
    for c in range({chains}):
        prev = None
        for i in range({length}):
            t = step.override(task_id=f"c{{c:02d}}_t{{i:03d}}")()
            if prev is not None:
                prev >> t
            prev = t
'''


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


# ------------------------------------------------------------------ profile


@dataclass
class MotoMeter:
    """Every request moto's server answered: count and wall time by operation."""

    calls: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def installed(self) -> Iterator[None]:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        original = DomainDispatcherApplication.__call__
        meter = self

        def timed(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            operation = _operation(environ)
            status: list[str] = []

            def noting(code: str, headers: Any, *rest: Any) -> Any:
                status.append(code)
                return start_response(code, headers, *rest)

            began = time.perf_counter()
            try:
                # moto answers with a list of bytes: the work is done on return
                return original(app, environ, noting)
            finally:
                if status and not status[0].startswith("2"):
                    operation += f" ({status[0].split()[0]})"
                spent = time.perf_counter() - began
                with meter.lock:
                    meter.calls[operation] += 1
                    meter.seconds[operation] += spent

        DomainDispatcherApplication.__call__ = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            DomainDispatcherApplication.__call__ = original  # type: ignore[method-assign]


def _operation(environ: dict[str, Any]) -> str:
    """``dynamodb.Query runs/by_state``, ``amazonsqs.ReceiveMessage``, ``s3.GET``:
    a DynamoDB call is named with its tables (and index), the last part of
    each table's name; a transaction lists its items (U: update, P: put, ...)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB"):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        request = json.loads(body or b"{}")
        tables = _short(request.get("TableName", ""))
        if "IndexName" in request:
            tables += f"/{request['IndexName']}"
        if "TransactItems" in request:
            tables = "+".join(
                f"{kind[0]}:{_short(body['TableName'])}"
                for item in request["TransactItems"]
                for kind, body in item.items()
            )
        return f"dynamodb.{target.partition('.')[2]} {tables}".strip()
    if target:
        service, _, op = target.partition(".")
        return f"{service.lower()}.{op}"
    return f"s3.{environ.get('REQUEST_METHOD', '')}"


def _short(table: str) -> str:
    return table.rsplit("-", 1)[-1]


IDLE_LEAVES = {
    "_read_line",
    "wait",
    "select",
    "poll",
    "accept",
    "readinto",
    "recv_into",
    "readline",
    "_wait_for_tstate_lock",
    "get",
    "sleep",
    "_sample_loop",
}


class Sampler:
    """Samples the stack process's threads every ``interval`` seconds; a thread
    whose innermost frame is a blocking wait counts as idle and is left out."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.by_package: Counter[str] = Counter()
        self.by_function: Counter[str] = Counter()  # inclusive
        self.by_leaf: Counter[str] = Counter()  # exclusive
        self.by_thread: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_loop(self) -> None:
        me = threading.get_ident()
        names = {}
        while not self._stop.wait(self.interval):
            names.update({t.ident: t.name for t in threading.enumerate()})
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me or frame.f_code.co_name in IDLE_LEAVES:
                    continue
                self._count(names.get(ident, "?"), frame)

    def _count(self, thread: str, frame: Any) -> None:
        stack = []
        while frame is not None:
            stack.append(frame.f_code)
            frame = frame.f_back
        leaf = stack[0]
        self.by_leaf[_where(leaf)] += 1
        self.by_package[_package(stack)] += 1
        self.by_thread[_thread_kind(thread)] += 1
        for code in set(stack):
            self.by_function[_where(code)] += 1


def _where(code: Any) -> str:
    path = code.co_filename
    for marker in ("site-packages/", "/wt-tput/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_name}"


def _package(stack: list[Any]) -> str:
    """Who the time belongs to: the innermost frame of a package we name."""
    for code in stack:
        path = code.co_filename
        for name in ("moto", "werkzeug", "botocore", "pynamodb", "chalicelib", "pydantic"):
            if f"/{name}/" in path:
                return name
    return "other (stdlib)"


def _thread_kind(name: str) -> str:
    if name.startswith("Thread-") or "process_request" in name:
        return "moto request threads"
    return name.rsplit("-", 1)[0] if name[-1:].isdigit() else name


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, from /proc (0 when unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -------------------------------------------------------------------- bench


@dataclass
class Result:
    runs: int
    tasks: int
    trigger_seconds: float
    finish_seconds: float
    starts: list[float]  # seconds after the first trigger, sorted
    handoffs: list[float]
    run_seconds: list[float]
    states: Counter[str]
    stack_cpu: float
    worker_cpu: float
    meter: MotoMeter | None
    sampler: Sampler | None


def run_bench(
    runs: int, tasks: int, chains: int, workers: int, profile: bool, timeout: float
) -> Result:
    from chalicelib import wiring
    from chalicelib.api import deps
    from chalicelib.local.stack import LocalStack

    if tasks % chains:
        raise SystemExit(f"--tasks {tasks} is not a multiple of --chains {chains}")
    length = tasks // chains
    meter = MotoMeter() if profile else None
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        record = project / "starts.jsonl"
        (project / "dags").mkdir()
        (project / "dags" / "throughput.py").write_text(
            DAG_SOURCE.format(
                record=RECORD_ENV,
                dag_id=DAG_ID,
                runs=runs,
                slots=chains * runs,
                chains=chains,
                length=length,
            )
        )
        os.environ[RECORD_ENV] = str(record)
        with (
            meter.installed() if meter is not None else _nothing(),
            LocalStack(workers=workers, tick_seconds=5.0) as stack,
        ):
            assert stack.deploy(project).ok
            assert stack.executor is not None
            pids = stack.executor.pids
            cpu_before = (cpu_seconds(os.getpid()), sum(cpu_seconds(p) for p in pids))
            if meter is not None:
                meter.calls.clear()
                meter.seconds.clear()
            sampler = Sampler().start() if profile else None
            scheduler = wiring.scheduler()
            first = time.time()
            run_ids = [
                scheduler.trigger(DAG_ID, run_id=f"tput__{i:04d}")[0].run_id for i in range(runs)
            ]
            trigger_seconds = time.time() - first
            want = runs * tasks

            def all_started() -> bool | None:
                if not record.exists():
                    return None
                with record.open("rb") as f:
                    return True if sum(1 for _ in f) >= want else None

            stack.wait_until(all_started, timeout, f"{want} task starts")
            store = wiring.state_store()
            pending = list(run_ids)
            while pending:
                pending = [
                    r
                    for r in pending
                    if not (got := store.get_run(DAG_ID, r)) or not got.state.finished
                ]
                if pending:
                    if time.time() - first > timeout:
                        raise TimeoutError(f"{len(pending)} runs not finished")
                    time.sleep(0.2)
            if sampler is not None:
                sampler.stop()
            stack_cpu = cpu_seconds(os.getpid()) - cpu_before[0]
            worker_cpu = sum(cpu_seconds(p) for p in pids) - cpu_before[1]
            # Measured; now read what the store recorded, off the clock.
            started: dict[tuple[str, str], float] = {}
            for line in record.read_text().splitlines():
                start = json.loads(line)
                key = (start["run"], start["task"])
                started[key] = min(start["at"], started.get(key, start["at"]))
            handoffs: list[float] = []
            run_seconds: list[float] = []
            states: Counter[str] = Counter()
            last_end = first
            for run_id in run_ids:
                run = store.get_run(DAG_ID, run_id)
                assert run is not None
                states[run.state.value] += 1
                if run.start_date and run.end_date:
                    run_seconds.append((run.end_date - run.start_date).total_seconds())
                    last_end = max(last_end, run.end_date.timestamp())
                instances = deps.catalog().all_instances(DAG_ID, run_id)
                for c in range(chains):
                    for i in range(1, length):
                        up = instances.get((f"c{c:02d}_t{i - 1:03d}", -1))
                        down = started.get((run_id, f"c{c:02d}_t{i:03d}"))
                        if up is not None and up.end_date is not None and down is not None:
                            handoffs.append(down - up.end_date.timestamp())
    os.environ.pop(RECORD_ENV, None)
    return Result(
        runs=runs,
        tasks=tasks,
        trigger_seconds=trigger_seconds,
        finish_seconds=last_end - first,
        starts=sorted(at - first for at in started.values()),
        handoffs=sorted(handoffs),
        run_seconds=sorted(run_seconds),
        states=states,
        stack_cpu=stack_cpu,
        worker_cpu=worker_cpu,
        meter=meter,
        sampler=sampler,
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def report(r: Result, chains: int, workers: int, wall: float) -> None:
    n = len(r.starts)
    lo, hi = percentile(r.starts, 0.10), percentile(r.starts, 0.90)
    steady = 0.8 * n / (hi - lo) if hi > lo else float("nan")
    print(
        f"\n{r.runs} runs x {r.tasks} tasks ({chains} parallel chains of {r.tasks // chains}), "
        f"{workers} local workers, {os.cpu_count()} cores"
    )
    print(f"run states: {dict(r.states)}; tasks started: {n} of {r.runs * r.tasks}")
    print(
        f"tasks started per second: {n / r.starts[-1]:.1f} overall (first trigger -> last "
        f"start, {r.starts[-1]:.1f} s), {steady:.1f} steady (10th -> 90th percentile start)"
    )
    h = r.handoffs
    print(
        f"hand-off (upstream end -> downstream start), {len(h)} edges: p50 "
        f"{percentile(h, 0.5) * 1000:.0f} ms, p99 {percentile(h, 0.99) * 1000:.0f} ms, "
        f"max {h[-1] * 1000:.0f} ms"
    )
    rs = r.run_seconds
    print(
        f"wall time: triggering {r.trigger_seconds:.1f} s, all runs ended "
        f"{r.finish_seconds:.1f} s after the first trigger; a run took p50 "
        f"{statistics.median(rs):.1f} s, max {rs[-1]:.1f} s; whole bench {wall:.0f} s"
    )
    span = r.finish_seconds
    print(
        f"CPU while measured: stack process {r.stack_cpu:.1f} s "
        f"({r.stack_cpu / span:.0%} of a core), workers {r.worker_cpu:.1f} s "
        f"({r.worker_cpu / span:.0%} of a core); per task started: stack "
        f"{r.stack_cpu / n * 1000:.1f} ms, workers {r.worker_cpu / n * 1000:.1f} ms "
        "(CPU, unlike wall time, hardly moves with other load on the machine)"
    )
    if r.meter is not None:
        _print_meter(r.meter, n)
    if r.sampler is not None:
        _print_sampler(r.sampler)


def _print_meter(meter: MotoMeter, tasks: int) -> None:
    total = sum(meter.seconds.values())
    dynamo = sum(count for op, count in meter.calls.items() if op.startswith("dynamodb."))
    print(
        f"\nAWS calls moto served: {sum(meter.calls.values())} ({dynamo / tasks:.2f} DynamoDB "
        f"calls per task), {total:.1f} s inside moto"
    )
    print(f"  {'operation':<34}{'calls':>8}{'/task':>7}{'mean ms':>9}{'total s':>9}{'share':>7}")
    for op, secs in sorted(meter.seconds.items(), key=lambda kv: -kv[1]):
        count = meter.calls[op]
        print(
            f"  {op:<34}{count:>8}{count / tasks:>7.2f}{secs / count * 1000:>9.1f}"
            f"{secs:>9.1f}{secs / total:>7.0%}"
        )


def _print_sampler(s: Sampler, top: int = 25) -> None:
    busy = sum(s.by_package.values())
    print(f"\nstack process, sampled busy threads ({busy} thread-samples in {s.samples} ticks):")
    print(
        "  by package: " + ", ".join(f"{k} {v / busy:.0%}" for k, v in s.by_package.most_common())
    )
    print("  by thread: " + ", ".join(f"{k} {v / busy:.0%}" for k, v in s.by_thread.most_common()))
    print("  inclusive, by function:")
    for where, count in s.by_function.most_common(top):
        print(f"    {count / busy:6.1%}  {where}")
    print("  exclusive (innermost frame):")
    for where, count in s.by_leaf.most_common(12):
        print(f"    {count / busy:6.1%}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3, help="local worker processes")
    parser.add_argument("--profile", action="store_true", help="where the stack's time goes")
    parser.add_argument("--quick", action="store_true", help="10 runs of 50 tasks")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.tasks = 10, 50
    began = time.time()
    result = run_bench(args.runs, args.tasks, args.chains, args.workers, args.profile, args.timeout)
    report(result, args.chains, args.workers, time.time() - began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
