"""The shapes the chaos suite runs: every task writes one line when a try
starts (the independent record of starts: a doubled or lost try shows there,
whatever the store says), and its outcome depends only on its inputs, so a
fault-free ``dag.test()`` of the same conf is the oracle.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

from chalicelib.sdk import DAG, TaskFailed, TriggerRule, task

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
RECORD_ENV = "CHAOS_RECORD"


def started(ti) -> None:
    """Append this try's start to the record file (one write: lines never interleave)."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    line = json.dumps(
        {
            "dag": ti.dag_id,
            "run": ti.run_id,
            "task": ti.task_id,
            "map": ti.map_index,
            "try": ti.try_number,
            "pid": os.getpid(),
            "at": time.time(),
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def shape(dag_id: str, **kwargs) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, tags=["chaos"], **kwargs)


with shape("chaos_chain"):

    @task
    def step(value: int, ti=None) -> int:
        started(ti)
        return value + 1

    a = step.override(task_id="a")(0)
    b = step.override(task_id="b")(a)
    c = step.override(task_id="c")(b)
    d = step.override(task_id="d")(c)
    step.override(task_id="e")(d)


with shape("chaos_fan"):

    @task
    def source(ti=None) -> int:
        started(ti)
        return 3

    @task
    def widen(value: int, factor: int, ti=None) -> int:
        started(ti)
        return value * factor

    @task
    def join(values: list[int], ti=None) -> int:
        started(ti)
        return sum(values)

    seed = source()
    join([widen.override(task_id=f"w{i}")(seed, i) for i in range(6)])


with shape("chaos_branch", params={"path": "left"}):

    @task.branch
    def pick(params=None, ti=None) -> str:
        started(ti)
        return "left" if params["path"] == "left" else "right"

    @task
    def side(ti=None) -> str:
        started(ti)
        return ti.task_id

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def merge(ti=None) -> None:
        started(ti)

    left = side.override(task_id="left")()
    right = side.override(task_id="right")()
    pick() >> [left, right]
    [left, right] >> merge()


with shape("chaos_rules", params={"fail": True}):

    @task
    def ok(ti=None) -> None:
        started(ti)

    @task
    def maybe_fail(params=None, ti=None) -> None:
        started(ti)
        if params["fail"]:
            raise TaskFailed("failing on purpose")

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def on_failure(ti=None) -> None:
        started(ti)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def cleanup(ti=None) -> None:
        started(ti)

    @task
    def after_all(ti=None) -> None:
        started(ti)

    first, risky = ok(), maybe_fail()
    [first, risky] >> on_failure()
    [first, risky] >> cleanup()
    [first, risky] >> after_all()


with shape("chaos_retry"):

    @task(retries=2, retry_delay=dt.timedelta(seconds=1))
    def flaky(ti=None) -> int:
        started(ti)
        if ti.try_number == 1:
            raise RuntimeError("first try fails")
        return ti.try_number

    @task
    def after(value: int, ti=None) -> int:
        started(ti)
        return value

    after(flaky())


with shape("chaos_map", params={"n": 4}):

    @task
    def make_list(params=None, ti=None) -> list[int]:
        started(ti)
        return list(range(params["n"]))

    @task
    def square(item: int, ti=None) -> int:
        started(ti)
        return item * item

    @task
    def total(values: list[int], ti=None) -> int:
        started(ti)
        return sum(values)

    total(square.expand(item=make_list()))


with shape("chaos_window", params={"n": 5}, max_active_tasks=2):
    # chaos_map's tasks, wider than max_active_tasks: the map runs through a
    # window of two indices, each finished try starting the next (core.map_window).
    total(square.expand(item=make_list()))


with shape("chaos_slow"):

    @task(retries=2, retry_delay=dt.timedelta(seconds=1))
    def slow(seconds: float, ti=None) -> float:
        """Long enough for the suite to kill its worker mid-try."""
        started(ti)
        time.sleep(seconds)
        return seconds

    @task
    def done(values: list[float], ti=None) -> None:
        started(ti)

    done([slow.override(task_id=f"slow{i}")(1.5) for i in range(3)])
