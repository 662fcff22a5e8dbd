"""What running a try's user code in a child interpreter costs, per try.

Runs one no-op task (an EmptyOperator) through ``handle_worker_message`` on
the in-memory stack, ``--tries`` times in process, ``--tries`` times isolated
with each child spawned afresh (``SLIPSTREAM_ISOLATION_TEMPLATE=off``) and
``--tries`` times isolated with each child forked from the template
interpreter (``on``); isolated means ``WorkerDeps.task_credentials`` set,
fixed fake credentials, no AWS call. It prints the median and the spread of
the worker's whole handling of one try (claim, run, record, hand-off), and
the load average (the machine is shared; medians move with it). The
difference is the child's cost: spawning an interpreter and importing
Slipstream (spawned only) or forking the template, importing the DAG file,
and the JSON round trips of the result and the log lines.

Run: .venv/bin/python bench/isolation_overhead.py [--tries 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.deploy.bundle_store import LocalBundleStore
from tests.runtime.isolation_stack import bundle_stack, fixed_credentials

SOURCE = """
from datetime import datetime
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("noop", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="noop")
"""


def measure(folder: Path, isolated: bool, tries: int) -> list[float]:
    credentials = fixed_credentials if isolated else None
    stack, _ = bundle_stack(folder, SOURCE, credentials=credentials, bundles_class=LocalBundleStore)
    seconds: list[float] = []
    for i in range(tries + 1):  # the first warms the bundle cache and imports
        stack.scheduler.trigger("noop", run_id=f"r{i}")
        message, _ = stack.queue.pending.pop(0)
        stack.scheduler.handle(message)
        (invocation,) = stack.executor.invocations
        stack.executor.invocations.clear()
        started = time.perf_counter()
        outcome = stack.run_worker(invocation)
        elapsed = time.perf_counter() - started
        assert outcome.claimed, outcome
        stack.queue.pending.clear()
        if i:
            seconds.append(elapsed)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        modes = (("in-process", False, "on"), ("spawned", True, "off"), ("template", True, "on"))
        for mode, isolated, template in modes:
            os.environ["SLIPSTREAM_ISOLATION_TEMPLATE"] = template
            ms = [s * 1000 for s in measure(Path(tmp) / mode, isolated, args.tries)]
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(
                f"{mode:>10}: load {load}  median {statistics.median(ms):7.1f} ms  "
                f"min {min(ms):7.1f}  max {max(ms):7.1f}  ({len(ms)} tries)"
            )


if __name__ == "__main__":
    main()
