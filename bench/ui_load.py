"""How long until each UI page is usable, in headless Chromium against the API
served as ``slipstream dev`` serves it, with seeded data.

Pages and sizes (issue 9): the DAG list with 1,000 DAGs; the grid of a
10,000-task DAG over 25 runs; the grid of a 50-task DAG over 5,000 runs; the
Graph view of a 200-task DAG (20 task groups of 10, groups collapsed, coloured
by the newest run); a 10 MB log (of a one-task DAG of its own).

Seeding goes straight through the store, as bench/api_latency.py does: DAGs are
deployed from generated files, except the 1,000 DAGs of the DAG list, which are
planned as a deploy plans them and their items put straight into moto's tables
(bench/ui_seed.py says why and what is left out; a deploy through the store
takes minutes for them here). Each DAG's first run is written with
``create_run`` and the others are that item put straight into moto's table with
their own keys and dates (see ``_seed_runs``: moto's transactions make 5,000
``create_run`` calls far too slow); task instances are put as finished items;
the log is put into the try's CloudWatch stream in 1 MB batches. Nothing runs.

"Usable" is measured from the navigation in the browser to the moment the page
shows what it is for: the DAG list's first page with each DAG's last runs; the
grid's column heads and its first window of rows drawn ("drawn"), then every
row on screen filled ("every cell": the grid reads 40 rows at a time over the
newest 25 runs, the rest as the user scrolls or pages to older runs); the
graph's nodes drawn in the states of the newest of its 3 runs; the log's first
page. The DAG list and the graph are timed twice: the API process's first such
call (its thread pools, AWS clients and spec cache start cold) and the same
again.
Figures are moto's on this machine (the API reads from a moto server), so they
include the API's time, which a deployment's DynamoDB would change.

Targets: each <= 2 s; browser memory for the 10,000-task grid <= 500 MB (the
proportional set size of every Chromium process, from /proc/*/smaps_rollup).

Run: .venv/bin/python bench/ui_load.py [--dags 1000] [--tasks 10000] [--long-runs 5000]
     [--only dags wide long graph log]  (some pages only; the others are neither seeded nor timed)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

PAGES = ("dags", "wide", "long", "graph", "log")
TARGET_S = 2.0
TARGET_MB = 500.0
GRID_RUNS = 25
GRAPH_TASKS = 200  # plus a start task

MANY_DAGS = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

for index in range({count}):
    with DAG(f"many_{{index:04d}}", schedule="@daily", start_date=dt.datetime(2024, 1, 1),
             tags=["bench", f"team{{index % 10}}"]) as dag:
        EmptyOperator(task_id="only")
    globals()[f"dag_{{index}}"] = dag
"""

WIDE_DAG = """
import datetime as dt

from chalicelib.sdk import DAG, TaskGroup
from operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2024, 1, 1), tags=["bench"]):
    for group in range({groups}):
        with TaskGroup(f"g{{group:03d}}"):
            for index in range({per_group}):
                EmptyOperator(task_id=f"t{{index:04d}}")
"""


GRAPH_DAG = """
import datetime as dt

from chalicelib.sdk import DAG, TaskGroup
from operators.empty import EmptyOperator

with DAG("graph", schedule=None, start_date=dt.datetime(2024, 1, 1), tags=["bench"]):
    start = EmptyOperator(task_id="start")
    previous = [start]
    for group in range({groups}):
        with TaskGroup(f"stage{{group:02d}}") as stage:
            first = EmptyOperator(task_id="first")
            middle = [EmptyOperator(task_id=f"step{{i}}") for i in range({per_group} - 2)]
            last = EmptyOperator(task_id="last")
            first >> middle >> last
        previous[group % len(previous)] >> stage
        previous.append(stage)
"""


def _write_project(root: Path, dags: int, tasks: int, only: set[str]) -> list[str]:
    """The bench project's DAG files for the pages in ``only``; the files to deploy
    (the DAG list's many.py is seeded apart, see bench/ui_seed.py)."""
    (root / "dags").mkdir(parents=True)
    files = {"many": MANY_DAGS.format(count=dags)}
    if "wide" in only:
        groups = max(1, tasks // 100)
        files["wide"] = WIDE_DAG.format(dag_id="wide", groups=groups, per_group=tasks // groups)
    if "long" in only:
        files["long"] = WIDE_DAG.format(dag_id="long", groups=5, per_group=10)
    if "graph" in only:
        files["graph"] = GRAPH_DAG.format(groups=GRAPH_TASKS // 10, per_group=10)
    if "log" in only:
        files["logged"] = WIDE_DAG.format(dag_id="logged", groups=1, per_group=1)
    for name, text in files.items():
        (root / "dags" / f"{name}.py").write_text(text)
    (root / "operators").symlink_to(ROOT / "operators")
    return [str(root / "dags" / f"{name}.py") for name in files if name != "many"]


def _seed_runs(dag_id: str, count: int, with_instances: int) -> list[str]:
    """``count`` finished runs of ``dag_id``; the newest ``with_instances`` get every
    task instance, finished (a few failed), as the scheduler would leave them.

    The first run goes through the store's ``create_run``; the others are that
    item as the store wrote it, read back and put straight into moto's table with
    each run's own key, dates and state, and the DAG's run counter set to
    ``count`` at the end. moto 5.2 copies whole tables in every transaction
    (``create_run`` is one), so each run costs more than the one before (500
    runs took 21 s here, and the cost of each grows with the tables). The
    straight puts take seconds and leave the same items."""
    from chalicelib import wiring
    from chalicelib.api import deps
    from chalicelib.core.runs import DagRun, RunType
    from chalicelib.core.states import DagRunState
    from chalicelib.store.models import RUN_COUNTER, instance_pk, instance_sk

    store = wiring.state_store()
    record = store.get_dag(dag_id)
    assert record is not None and record.current_version
    spec = deps.specs().get(dag_id, record.current_version)
    model = store.models.task_instance
    runs = store.models.dag_run
    put_run = _moto_put(runs.Meta.table_name)
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    ids = []
    template = None
    for index in range(count):
        when = base + dt.timedelta(hours=index)
        run = DagRun(
            dag_id=dag_id,
            run_id=f"bench__{index:05d}",
            run_type=RunType.SCHEDULED,
            logical_date=when,
            data_interval_start=when - dt.timedelta(hours=1),
            data_interval_end=when,
            run_after=when,
            version=record.current_version,
            state=DagRunState.SUCCESS if index % 7 else DagRunState.FAILED,
            start_date=when,
            end_date=when + dt.timedelta(minutes=3),
            tenant=record.tenant,
        )
        ids.append(run.run_id)
        if template is None:
            assert store.create_run(run, spec)
            template = runs.get(dag_id, run.run_id)
            continue
        template.run_id = run.run_id
        template.st = run.state.value
        template.logical = run.logical_date
        template.di_start = run.data_interval_start
        template.di_end = run.data_interval_end
        template.run_after = run.run_after
        template.start = run.start_date
        template.end = run.end_date
        put_run(template.serialize())
    if count > 1:
        counter = runs.get(dag_id, RUN_COUNTER)
        counter.n = count
        put_run(counter.serialize(null_check=False))  # the counter has only keys and n
    put = _moto_put(model.Meta.table_name)
    for run_id in ids[len(ids) - with_instances :]:
        for n, task_id in enumerate(spec.tasks):
            item = model(
                instance_pk(dag_id, run_id),
                instance_sk(task_id, -1),
                st="failed" if n % 997 == 5 else "success",
                try_n=1,
                start=base,
                end=base + dt.timedelta(seconds=2),
            )
            put(item.serialize())
    return ids


def _moto_put(table_name: str) -> Callable[[dict[str, Any]], Any]:
    """Put items straight into the embedded moto's table, skipping HTTP: 250,000
    task instances through BatchWriteItem take many minutes on moto, in-process
    puts take seconds. The items are what pynamodb would send (``serialize``)."""
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            if table_name in backend.tables:
                table = backend.tables[table_name]
                return lambda attrs: table.put_item(attrs)
    raise LookupError(f"no moto table {table_name}")


def _seed_log(dag_id: str, run_id: str, task_id: str, megabytes: int) -> int:
    from chalicelib import wiring
    from chalicelib.store.task_logs import CloudWatchStreamWriter, stream_name

    logs = wiring.task_log_store()
    writer = CloudWatchStreamWriter(
        logs.client, logs.group, stream_name(dag_id, run_id, task_id, -1, 1)
    )
    start = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    line = 0
    written = 0
    while written < megabytes * 1_000_000:
        batch = []
        size = 0
        while size < 900_000 and len(batch) < 9_000:
            message = json.dumps(
                {
                    "timestamp": "2025-01-01T00:00:00+00:00",
                    "event": f"line {line}: " + "x" * 150,
                    "level": "info",
                    "logger": "bench",
                }
            )
            batch.append((start + line, message))
            size += len(message) + 26
            line += 1
        writer.write(batch)
        written += size
    return line


def _browser_rss_mb(driver: Any) -> float:
    """Memory of chromedriver's Chromium processes (every descendant), as the sum of
    their proportional set sizes: pages shared between processes count once."""
    root = driver.service.process.pid
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total_kb = 0
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for row in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
                if row.startswith("Pss:"):
                    total_kb += int(row.split()[1])
        except OSError:
            continue
    return total_kb / 1024


TIMEOUT = [300.0]  # --timeout


def _time_page(driver: Any, url: str, ready: Callable[[Any], bool]) -> float:
    timeout = TIMEOUT[0]
    driver.get("about:blank")
    started = time.perf_counter()
    driver.get(url)
    while not ready(driver):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{url} was not usable within {timeout:.0f}s")
        time.sleep(0.02)
    return time.perf_counter() - started


def _time_twice(
    results: list[tuple[str, float, str]],
    label: str,
    what: str,
    driver: Any,
    url: str,
    ready: Callable[[Any], bool],
) -> None:
    """The page's first navigation (the API process's first such call: thread
    pools, clients and spec caches start cold) and the same navigation again."""
    results.append((label, _time_page(driver, url, ready), what))
    results.append((label, _time_page(driver, url, ready), what + " again"))


def _js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--long-runs", type=int, default=5000)
    parser.add_argument("--log-mb", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300, help="seconds a page may take")
    parser.add_argument(
        "--only", nargs="+", choices=PAGES, default=list(PAGES), help="pages to seed and time"
    )
    args = parser.parse_args()
    only = set(args.only)
    TIMEOUT[0] = args.timeout

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from chalicelib import wiring
    from chalicelib.api import deps
    from chalicelib.deploy.deployer import deploy, plan_deploy
    from chalicelib.local.api_server import ApiServer
    from chalicelib.local.stack import LocalStack

    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp, LocalStack(workers=1, tick_seconds=3600):
        started = time.perf_counter()
        project = Path(tmp) / "bench"
        deployed = _write_project(project, args.dags, args.tasks, only)
        report = deploy(
            deployed,
            store=wiring.state_store(),
            bundles=wiring.bundle_store(),
            bundle_root=str(project),
            now=wiring.utc_now(),
            stage="local",
        )
        assert report.ok, report.problems
        print(f"deployed {len(report.dags)} DAGs in {time.perf_counter() - started:.1f}s")
        if "dags" in only:
            from ui_seed import seed_dags

            started = time.perf_counter()
            plan = plan_deploy([str(project / "dags" / "many.py")], bundle_root=str(project))
            seeded = seed_dags(wiring.state_store(), wiring.bundle_store(), plan, wiring.utc_now())
            print(f"seeded {seeded} more DAGs in {time.perf_counter() - started:.1f}s")
        dag_count = len(report.dags) + (args.dags if "dags" in only else 0)
        # The long DAG first: moto 5.2's transactions (create_run) copy whole tables,
        # so they are cheap only while the task-instance table is still small.
        if "long" in only:
            started = time.perf_counter()
            _seed_runs("long", args.long_runs, GRID_RUNS)
            print(
                f"seeded {args.long_runs} runs of a 50-task DAG"
                f" in {time.perf_counter() - started:.1f}s"
            )
        # Before the wide DAG's 250,000 instances, for the same reason.
        if "graph" in only:
            _seed_runs("graph", 3, 3)
        if "log" in only:
            started = time.perf_counter()
            logged_run = _seed_runs("logged", 1, 1)[-1]
            lines = _seed_log("logged", logged_run, "g000.t0000", args.log_mb)
            print(
                f"seeded a {args.log_mb} MB log ({lines} lines)"
                f" in {time.perf_counter() - started:.1f}s"
            )
        if "wide" in only:
            started = time.perf_counter()
            _seed_runs("wide", GRID_RUNS, GRID_RUNS)
            print(
                f"seeded {GRID_RUNS} runs x {args.tasks} tasks"
                f" in {time.perf_counter() - started:.1f}s"
            )
        server = ApiServer(port=0).start()
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1400,900"):  # fmt: skip
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            _, key = deps.api_keys().create(
                tenant="default", role="user", now=wiring.utc_now(), name="bench"
            )
            driver.get(f"{server.url}/ui/")
            who = json.dumps({"tenant": "default", "role": "user", "key_id": "bench"})
            driver.execute_script(
                "sessionStorage.setItem('slipstream.key', arguments[0]);"
                "sessionStorage.setItem('slipstream.who', arguments[1]);",
                key,
                who,
            )
            ui = f"{server.url}/ui/"
            if "dags" in only:
                _time_twice(
                    results,
                    f"DAG list, {dag_count} DAGs",
                    "first page + last runs",
                    driver,
                    ui + "#/dags",
                    lambda d: _js(
                        d,
                        "const rows = document.querySelectorAll('#dag-table tbody tr');"
                        "return rows.length === 25"
                        " && ![...rows].some(r => r.textContent.includes('…'))",
                    ),
                )
            for dag_id, label in (
                ("wide", f"grid, {args.tasks} tasks x {GRID_RUNS} runs"),
                ("long", f"grid, 50 tasks x {args.long_runs} runs"),
            ):
                if dag_id not in only:
                    continue
                drawn = _time_page(
                    driver,
                    ui + f"#/dags/{dag_id}/grid",
                    lambda d: _js(
                        d, "return document.querySelector('#grid[data-drawn=true]') !== null"
                    ),
                )
                # Same navigation again, timed to every cell filled (pages are in the HTTP cache
                # of neither side: the UI fetches with cache: no-store).
                filled = _time_page(
                    driver,
                    ui + f"#/dags/{dag_id}/grid",
                    lambda d: _js(
                        d, "return document.querySelector('#grid[data-loaded=true]') !== null"
                    ),
                )
                results.append((label, drawn, "rows and run columns drawn"))
                results.append((label, filled, "every cell filled"))
                if dag_id == "wide":
                    results.append((label, -_browser_rss_mb(driver), "browser memory (MB)"))
            if "graph" in only:
                _time_twice(
                    results,
                    f"graph, {GRAPH_TASKS + 1} tasks in {GRAPH_TASKS // 10} groups",
                    "drawn in a run's states",
                    driver,
                    ui + "#/dags/graph/graph",
                    lambda d: _js(
                        d,
                        "const g = document.querySelector('#graph[data-drawn=true]');"
                        "return !!g && document.querySelectorAll('#graph-run option').length === 3",
                    ),
                )
            if "log" in only:
                run = quote(logged_run, safe="")
                seconds = _time_page(
                    driver,
                    ui + f"#/dags/logged/runs/{run}?task=g000.t0000",
                    lambda d: _js(
                        d,
                        "const s = document.querySelector('#log + button + p');"
                        "return !!s && / lines/.test(s.textContent)",
                    ),
                )
                results.append((f"log, {args.log_mb} MB", seconds, "run view + first log page"))
        finally:
            driver.quit()
            server.stop()
    print()
    print(f"{'page':40} {'what':28} {'figure':>10}  target")
    failed = False
    for label, value, what in results:
        if value < 0:
            ok = -value <= TARGET_MB
            figure, target = f"{-value:9.0f}  ", f"<= {TARGET_MB:.0f} MB"
        else:
            ok = value <= TARGET_S
            figure, target = f"{value:9.2f}s ", f"<= {TARGET_S:.0f} s"
        print(f"{label:40} {what:28} {figure} {target} {'ok' if ok else 'MISSED'}")
        failed = failed or not ok
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
