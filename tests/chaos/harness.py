"""The chaos suite: many runs of varied shapes on the local stack, every AWS
call through the fault proxy, a few warm workers killed mid-try, and each
run's end compared with a fault-free ``dag.test()`` of the same conf.

What it counts:
- **correct**: the run finished with the oracle's run state and task states;
- **duplicate starts**: a (run, task, map index, try) that the tasks' own
  start record shows starting twice (the claim must make that impossible);
- **lost tries**: an instance the oracle ran that never started at all;
- **stuck**: runs not finished when the deadline passed.

Run: .venv/bin/python -m tests.chaos.harness [--runs 200] [--seed 7] [--kills 4]
(``make chaos``); tests/chaos/test_chaos.py runs a short variant in ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import itertools
import json
import logging
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.proxy import FaultMix, FaultProxy

PROJECT = Path(__file__).resolve().parent / "project"
DAG_FILE = PROJECT / "dags" / "chaos_shapes.py"
RECORD_ENV = "CHAOS_RECORD"
KILLABLE = "chaos_slow"
UNFINISHED = {"none", "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule"}


@dataclass(frozen=True)
class Planned:
    dag_id: str
    run_id: str
    conf: dict[str, Any]

    @property
    def oracle_key(self) -> tuple[str, str]:
        return self.dag_id, json.dumps(self.conf, sort_keys=True)


@dataclass
class Outcome:
    state: str
    task_states: dict[str, str]


@dataclass
class Report:
    runs: int
    correct: int = 0
    stuck: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    duplicate_starts: list[str] = field(default_factory=list)
    lost_tries: list[str] = field(default_factory=list)
    not_triggered: list[str] = field(default_factory=list)
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    trigger_seconds: float = 0.0  # from the first trigger to the last
    slowest: list[str] = field(default_factory=list)  # where the slowest runs waited
    finish_seconds: float = 0.0  # from the first trigger until every run ended

    @property
    def ok(self) -> bool:
        return (
            self.correct == self.runs
            and not self.duplicate_starts
            and not self.lost_tries
            and not self.stuck
        )

    def faults_given(self, kind: str) -> int:
        """How many faults of one kind (refused, ambiguous, delayed, duplicated)."""
        return sum(n for key, n in self.faults.items() if key.split(":", 1)[0] == kind)

    def summary(self) -> str:
        given = Counter[str]()
        for key, count in self.faults.items():
            given[key.split(":", 1)[0]] += count
        lines = [
            f"runs correct: {self.correct} / {self.runs}",
            f"duplicate starts: {len(self.duplicate_starts)}",
            f"lost tries: {len(self.lost_tries)}",
            f"stuck runs: {len(self.stuck)}",
            f"not triggered: {len(self.not_triggered)}",
            f"workers killed mid-try: {self.kills}",
            "faults given: " + ", ".join(f"{k} {v}" for k, v in sorted(given.items())),
            f"wall time: {self.seconds:.0f} s (triggering {self.trigger_seconds:.0f} s, "
            f"all runs ended {self.finish_seconds:.0f} s after the first trigger)",
        ]
        for title, items in (
            ("wrong", self.wrong),
            ("stuck", self.stuck),
            ("duplicate", self.duplicate_starts),
            ("lost", self.lost_tries),
            ("not triggered", self.not_triggered),
            ("slow", self.slowest),
        ):
            lines.extend(f"  {title}: {item}" for item in items[:10])
        return "\n".join(lines)


def plan(runs: int, seed: int) -> list[Planned]:
    """Runs spread over the shapes, confs drawn from ``seed``."""
    rng = random.Random(seed)
    shapes = [
        "chaos_chain",
        "chaos_fan",
        "chaos_branch",
        "chaos_rules",
        "chaos_retry",
        "chaos_map",
        "chaos_window",
        KILLABLE,
    ]
    planned = []
    for index in range(runs):
        dag_id = shapes[index % len(shapes)]
        conf: dict[str, Any] = {}
        if dag_id == "chaos_branch":
            conf = {"path": rng.choice(["left", "right"])}
        elif dag_id == "chaos_rules":
            conf = {"fail": rng.random() < 0.7}
        elif dag_id == "chaos_map":
            conf = {"n": rng.randint(0, 6)}
        elif dag_id == "chaos_window":
            conf = {"n": rng.randint(3, 8)}
        planned.append(Planned(dag_id, f"chaos__{seed}_{index:04d}", conf))
    return planned


def oracles(planned: list[Planned]) -> dict[tuple[str, str], Outcome]:
    """Each distinct (DAG, conf) run once, fault-free, in this process."""
    from chalicelib.local.runner import run_dag_test
    from chalicelib.sdk.loader import load_dag

    found: dict[tuple[str, str], Outcome] = {}
    for run in planned:
        if run.oracle_key in found:
            continue
        dag = load_dag(str(DAG_FILE), run.dag_id)
        with contextlib.redirect_stderr(io.StringIO()):  # the tasks' log lines
            result = run_dag_test(dag, conf=run.conf, show=False)
        found[run.oracle_key] = Outcome(result.state, dict(result.task_states))
    return found


def _starts(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


class Killer:
    """Kills the warm worker of a ``chaos_slow`` try shortly after it started,
    each instance at most once (its retries cover one lost try)."""

    def __init__(self, record: Path, budget: int, seed: int) -> None:
        self.record = record
        self.budget = budget
        self.kills = 0
        self._rng = random.Random(seed)
        self._killed: set[tuple[str, str]] = set()
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-killer", daemon=True)

    def start(self) -> Killer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(0.2) and self.kills < self.budget:
            starts = _starts(self.record)
            fresh, self._seen = starts[self._seen :], len(starts)
            for start in fresh:
                key = (start["run"], start["task"])
                if start["dag"] != KILLABLE or not start["task"].startswith("slow"):
                    continue
                if key in self._killed or self._rng.random() > 0.5:
                    continue
                self._killed.add(key)
                with contextlib.suppress(ProcessLookupError):
                    time.sleep(0.3)  # mid-try: the task sleeps 1.5 s
                    os.kill(int(start["pid"]), signal.SIGKILL)
                    self.kills += 1
                if self.kills >= self.budget:
                    return


def _trigger(stack: Any, run: Planned, attempts: int = 8) -> bool:
    """Trigger as a client would under faults: retry the same run id until the
    run exists (a retry after a lost reply must not make a second run)."""
    from chalicelib import wiring

    for attempt in range(attempts):
        try:
            wiring.scheduler().trigger(run.dag_id, conf=run.conf, run_id=run.run_id)
            return True
        except Exception as exc:  # an AWS error that outlived the SDK's retries
            logging.getLogger("chaos").info("trigger %s: %s", run.run_id, exc)
            time.sleep(0.2 * (attempt + 1))
    return False


def _outcome(dag_id: str, run_id: str) -> Outcome | None:
    from chalicelib.api import deps

    store = deps.catalog().store
    run = store.get_run(dag_id, run_id)
    if run is None:
        return None
    instances = deps.catalog().all_instances(dag_id, run_id)
    mapped = {task for task, index in instances if index >= 0}
    states = {
        ti.label: ti.state.value
        for (task, index), ti in instances.items()
        if not (index < 0 and task in mapped)  # a mapped task's placeholder
    }
    return Outcome(run.state.value, states)


def _same(expected: Outcome, got: Outcome) -> bool:
    def seen(states: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in states.items() if v != "none"}

    return expected.state == got.state and seen(expected.task_states) == seen(got.task_states)


def run_chaos(
    runs: int,
    seed: int,
    mix: FaultMix,
    *,
    kills: int,
    workers: int = 3,
    deadline_seconds: float = 600.0,
) -> Report:
    from chalicelib import wiring
    from chalicelib.local.stack import LocalStack

    planned = plan(runs, seed)
    expected = oracles(planned)
    report = Report(runs=runs)
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, _env(RECORD_ENV, str(Path(tmp) / "starts.jsonl")):
        record = Path(os.environ[RECORD_ENV])
        proxy: FaultProxy | None = None

        def via(moto_url: str) -> str:
            nonlocal proxy
            proxy = FaultProxy(moto_url, mix, seed).start()
            return proxy.url

        stack = LocalStack(
            workers=workers,
            tick_seconds=2.0,
            heartbeat_timeout=dt.timedelta(seconds=20),
            stall_timeout=dt.timedelta(seconds=30),
            queued_timeout=dt.timedelta(seconds=30),
            endpoint_via=via,
        )
        with _env("SLIPSTREAM_HEARTBEAT_SECONDS", "3"), stack:
            assert proxy is not None
            assert stack.deploy(PROJECT).ok
            proxy.enabled.set()
            killer = Killer(record, kills, seed).start()
            try:
                first = time.monotonic()
                for run in planned:
                    if not _trigger(stack, run):
                        report.not_triggered.append(run.run_id)
                report.trigger_seconds = time.monotonic() - first
                deadline = time.monotonic() + deadline_seconds
                pending = [r for r in planned if r.run_id not in report.not_triggered]
                while pending and time.monotonic() < deadline:
                    pending = [r for r in pending if not _finished(r)]
                    if pending:
                        time.sleep(1.0)
                report.finish_seconds = time.monotonic() - first
            finally:
                killer.stop()
                proxy.enabled.clear()
            report.kills = killer.kills
            report.faults = proxy.faults
            _judge(report, planned, expected, _starts(record))
            wiring.reset()
            proxy.stop()
    report.seconds = time.monotonic() - started_at
    return report


def _finished(run: Planned) -> bool:
    from chalicelib import wiring

    try:
        got = wiring.state_store().get_run(run.dag_id, run.run_id)
    except Exception:  # a refused read while faults are on: ask again later
        return False
    return got is not None and got.state.finished


def _judge(
    report: Report,
    planned: list[Planned],
    expected: dict[tuple[str, str], Outcome],
    starts: list[dict[str, Any]],
) -> None:
    tries = Counter((s["run"], s["task"], s["map"], s["try"]) for s in starts)
    report.duplicate_starts = [
        f"{run} {task}[{index}] try {attempt} started {n} times"
        for (run, task, index, attempt), n in sorted(tries.items())
        if n > 1
    ]
    ran = {(s["run"], s["task"], s["map"]) for s in starts}
    report.slowest = _slowest(planned, starts)
    for run in planned:
        if run.run_id in report.not_triggered:
            continue
        want = expected[run.oracle_key]
        got = _outcome(run.dag_id, run.run_id)
        if got is None or got.state not in ("success", "failed"):
            report.stuck.append(f"{run.run_id} ({run.dag_id}): {got.state if got else 'missing'}")
        elif _same(want, got):
            report.correct += 1
        else:
            diff = {
                k: (want.task_states.get(k), got.task_states.get(k))
                for k in set(want.task_states) | set(got.task_states)
                if want.task_states.get(k) != got.task_states.get(k)
            }
            report.wrong.append(f"{run.run_id} ({run.dag_id}) {want.state}->{got.state} {diff}")
        for label, state in want.task_states.items():
            if state in ("success", "failed"):
                task, _, index = label.partition("[")
                key = (run.run_id, task, int(index.rstrip("]")) if index else -1)
                if key not in ran:
                    report.lost_tries.append(f"{run.run_id} {label}")


def _slowest(planned: list[Planned], starts: list[dict[str, Any]], count: int = 5) -> list[str]:
    """The slowest runs and the longest wait in each: which start came after
    it and how long the run sat before it (where a fault cost time)."""
    from chalicelib import wiring

    by_run: dict[str, list[dict[str, Any]]] = {}
    for start in starts:
        by_run.setdefault(start["run"], []).append(start)
    found: list[tuple[float, str]] = []
    for run in planned:
        got = wiring.state_store().get_run(run.dag_id, run.run_id)
        if got is None or got.start_date is None:
            continue
        began = got.start_date.timestamp()
        ended = got.end_date.timestamp() if got.end_date else time.time()
        events = sorted(by_run.get(run.run_id, []), key=lambda s: s["at"])
        marks = [(began, "run start")]
        marks += [(s["at"], f"{s['task']}[{s['map']}] try {s['try']} start") for s in events]
        marks.append((ended, "run end"))
        gap, before, after = max((b[0] - a[0], a[1], b[1]) for a, b in itertools.pairwise(marks))
        found.append(
            (
                ended - began,
                f"{run.run_id} ({run.dag_id}) {ended - began:.0f} s; "
                f"longest wait {gap:.0f} s: {before} -> {after}",
            )
        )
    return [text for _, text in sorted(found, reverse=True)[:count]]


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--refused", type=float, default=0.10)
    parser.add_argument("--ambiguous", type=float, default=0.10)
    parser.add_argument("--delayed", type=float, default=0.05)
    parser.add_argument("--duplicated", type=float, default=0.05)
    parser.add_argument("--deadline", type=float, default=780.0, help="seconds for runs to end")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    mix = FaultMix(args.refused, args.ambiguous, args.delayed, args.duplicated)
    report = run_chaos(args.runs, args.seed, mix, kills=args.kills, deadline_seconds=args.deadline)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
