"""How fast is ``slipstream dags test`` as a whole process?

Generates DAG files of no-op Python tasks, runs each through the real CLI in
a fresh process (so import and start-up cost count, as they do for users),
and prints wall seconds and per-task overhead. Then times validating and
serialising a 10,000-task DAG and reports the peak memory of that process.

Targets (2-core machine): chain of 50 < 1.7 s, 1 -> 200 -> 1 fan-out < 2.9 s,
10,000-task validate + serialise < 2 s and < 300 MB.

Run: .venv/bin/python bench/local_test.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLIPSTREAM = [sys.executable, "-m", "chalicelib.cli"]

HEADER = """
import pendulum
from chalicelib.sdk import DAG, task
from operators.python import PythonOperator


def noop():
    return None
"""


def chain(length: int) -> str:
    return f"""
with DAG("bench", max_active_tasks=16) as dag:
    prev = None
    for i in range({length}):
        t = PythonOperator(task_id=f"t{{i}}", python_callable=noop)
        if prev is not None:
            prev >> t
        prev = t
"""


SHAPES = {
    "chain_50": (50, chain(50)),
    "fanout_200": (
        202,
        """
with DAG("bench", max_active_tasks=16) as dag:
    start = PythonOperator(task_id="start", python_callable=noop)
    end = PythonOperator(task_id="end", python_callable=noop)
    for i in range(200):
        start >> PythonOperator(task_id=f"w{i}", python_callable=noop) >> end
""",
    ),
    "chain_1000": (1000, chain(1000)),
    "mapped_10000": (
        10002,
        """
with DAG("bench", max_active_tasks=16) as dag:
    @task
    def items():
        return list(range(10000))

    @task
    def work(x):
        return None

    @task
    def done(results):
        return len(results)

    done(work.expand(x=items()))
""",
    ),
}

VALIDATE_SCRIPT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
t_import = time.perf_counter()
with DAG("big") as dag:
    prev = []
    for i in range(100):
        layer = [EmptyOperator(task_id=f"l{{i}}_{{j}}") for j in range(100)]
        for a, b in zip(prev, layer):
            a >> b
        prev = layer
t_built = time.perf_counter()
dag.validate()
spec = dag.to_spec()
text = spec.canonical_json()
digest = spec.content_hash
t_done = time.perf_counter()
print(json.dumps({{
    "tasks": len(spec.tasks),
    "build_s": t_built - t_import,
    "validate_serialize_s": t_done - t_built,
    "json_bytes": len(text),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}}))
"""


def run_cli(path: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(
        [*SLIPSTREAM, "dags", "test", str(path), "bench", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{proc.stdout}\n{proc.stderr}")
    return wall


def startup_seconds() -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([*SLIPSTREAM, "--help"], cwd=ROOT, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per shape (median is shown)")
    parser.add_argument("--only", nargs="*", default=None, help="shapes to run")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    boot = statistics.median(startup_seconds() for _ in range(args.repeat))
    print(f"CLI start-up (slipstream --help): {boot:.3f} s")
    print()
    print(f"{'shape':<14}{'tasks':>7}{'wall s (median)':>17}{'per-task ms':>13}{'target':>10}")
    targets = {"chain_50": 1.7, "fanout_200": 2.9}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (tasks, body) in SHAPES.items():
            if args.only and name not in args.only:
                continue
            path = Path(tmp) / f"{name}.py"
            path.write_text(HEADER + textwrap.dedent(body))
            walls = [run_cli(path) for _ in range(args.repeat)]
            wall = statistics.median(walls)
            per_task = (wall - boot) / tasks * 1000
            target = targets.get(name)
            verdict = (
                "" if target is None else (f"<{target}" + (" ok" if wall < target else " MISS"))
            )
            print(f"{name:<14}{tasks:>7}{wall:>17.3f}{per_task:>13.3f}{verdict:>10}")

    proc = subprocess.run(
        [sys.executable, "-c", VALIDATE_SCRIPT.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(proc.stdout)
    print()
    print(
        f"validate + serialise {figures['tasks']} tasks: "
        f"{figures['validate_serialize_s']:.3f} s (target < 2 s), "
        f"building the DAG objects {figures['build_s']:.3f} s, "
        f"spec JSON {figures['json_bytes'] / 1e6:.1f} MB, "
        f"peak RSS {figures['peak_rss_mb']:.0f} MB (target < 300 MB)"
    )


if __name__ == "__main__":
    main()
