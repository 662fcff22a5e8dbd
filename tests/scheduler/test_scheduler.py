"""The serverless scheduler and worker, end to end over a state store.

Each test runs against the in-memory store and DynamoDB on moto (the
``store`` fixture), with a fake clock and explicit delivery of queue
messages and worker invocations.
"""

from __future__ import annotations

import datetime as dt
import itertools
from datetime import timedelta

import pendulum
import pytest
from moto import mock_aws

from chalicelib.core.messages import TaskFinishedMessage
from chalicelib.core.runs import RunType
from chalicelib.core.slots import dag_run_key
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.sdk import DAG, TriggerRule, task
from chalicelib.sdk.scheduler_settings import CRON_DATA_INTERVALS, deployment_settings
from chalicelib.store.memory import InMemoryStateStore
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack, mapped_dag
from tests.store.conftest import make_dynamo_store, store_settings

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def stack(store) -> Stack:
    return Stack(store=store, clock=FakeClock(dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)))


def hourly_dag(catchup: bool, max_active_runs: int = 16, *, data_intervals: bool = False) -> DAG:
    """``data_intervals``: the deployment setting that keeps Airflow 2's data intervals."""
    settings = {CRON_DATA_INTERVALS: "True"} if data_intervals else {}
    with (
        deployment_settings(settings),
        DAG(
            "hourly",
            schedule="@hourly",
            start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
            catchup=catchup,
            max_active_runs=max_active_runs,
        ) as dag,
    ):
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    return dag


def test_catchup_creates_a_run_at_every_tick_with_airflow_3s_default(stack: Stack) -> None:
    stack.deploy(hourly_dag(catchup=True))
    report = stack.scheduler.tick()
    # now 03:30: the ticks 00:00 to 03:00 have come; each run's interval is its tick
    assert report.runs_created == [f"scheduled__2024-01-01T0{h}:00:00+00:00" for h in range(4)]
    stack.settle()
    run = stack.store.get_run("hourly", report.runs_created[-1])
    assert run.data_interval_start == run.data_interval_end == run.logical_date == run.run_after
    stack.clock.advance(3600)
    assert stack.scheduler.tick().runs_created == ["scheduled__2024-01-01T04:00:00+00:00"]


def test_without_catchup_only_the_latest_tick_runs(stack: Stack) -> None:
    stack.deploy(hourly_dag(catchup=False))
    assert stack.scheduler.tick().runs_created == ["scheduled__2024-01-01T03:00:00+00:00"]


def test_catchup_creates_airflows_runs_and_a_repeated_tick_creates_none(stack: Stack) -> None:
    stack.deploy(hourly_dag(catchup=True, data_intervals=True))
    report = stack.scheduler.tick()
    # now 03:30: intervals [00,01) [01,02) [02,03) are complete; [03,04) is not
    assert report.runs_created == [
        "scheduled__2024-01-01T00:00:00+00:00",
        "scheduled__2024-01-01T01:00:00+00:00",
        "scheduled__2024-01-01T02:00:00+00:00",
    ]
    assert stack.scheduler.tick().runs_created == []
    stack.settle()
    for run_id in report.runs_created:
        run = stack.store.get_run("hourly", run_id)
        assert run.state is DagRunState.SUCCESS
        assert run.data_interval_end - run.data_interval_start == timedelta(hours=1)
        assert run.run_type is RunType.SCHEDULED
    stack.clock.advance(3600)  # 04:30: the [03,04) interval is due
    assert stack.scheduler.tick().runs_created == ["scheduled__2024-01-01T03:00:00+00:00"]


def test_without_catchup_only_the_latest_interval_runs(stack: Stack) -> None:
    stack.deploy(hourly_dag(catchup=False, data_intervals=True))
    assert stack.scheduler.tick().runs_created == ["scheduled__2024-01-01T02:00:00+00:00"]


def test_max_active_runs_holds_back_creation(stack: Stack) -> None:
    stack.deploy(hourly_dag(catchup=True, max_active_runs=1))
    assert len(stack.scheduler.tick().runs_created) == 1
    assert stack.scheduler.tick().runs_created == []  # still active
    stack.settle()
    assert len(stack.scheduler.tick().runs_created) == 1


def test_paused_dag_is_not_scheduled(stack: Stack) -> None:
    stack.deploy(hourly_dag(catchup=True), paused=True)
    assert stack.scheduler.tick().runs_created == []


def test_manual_trigger_with_conf(stack: Stack) -> None:
    seen: list[object] = []
    with DAG("manual", params={"n": 1}) as dag:

        @task
        def show(params=None, dag_run=None) -> None:
            seen.append((params["n"], dag_run.conf))

        show()

    stack.deploy(dag)
    run, created = stack.scheduler.trigger("manual", conf={"n": 5})
    assert created and run.run_id.startswith("manual__")
    again, created_again = stack.scheduler.trigger(
        "manual", conf={"n": 5}, logical_date=run.logical_date
    )
    assert not created_again and again.run_id == run.run_id
    stack.settle()
    assert stack.store.get_run("manual", run.run_id).state is DagRunState.SUCCESS
    assert seen == [(5, {"n": 5})]


def test_bad_conf_writes_nothing(stack: Stack) -> None:
    from chalicelib.core.errors import SlipstreamError
    from chalicelib.sdk import Param

    with DAG("typed", params={"n": Param(1, type="integer")}) as dag:
        EmptyOperator(task_id="a")
    stack.deploy(dag)
    with pytest.raises(SlipstreamError, match="n"):
        stack.scheduler.trigger("typed", conf={"n": "five"})
    assert stack.queue.sent == []


def test_retries_with_backoff_on_an_injected_clock(stack: Stack) -> None:
    tries: list[tuple[int, dt.datetime]] = []
    with DAG("retrying") as dag:

        @task(retries=2, retry_delay=timedelta(seconds=60), retry_exponential_backoff=True)
        def flaky(ti=None) -> None:
            tries.append((ti.try_number, stack.clock()))
            if ti.try_number < 3:
                raise RuntimeError("later")

        flaky() >> EmptyOperator(task_id="after")

    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("retrying")
    stack.settle()
    assert stack.store.get_run("retrying", run.run_id).state is DagRunState.SUCCESS
    assert [n for n, _ in tries] == [1, 2, 3]
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in itertools.pairwise(tries)]
    assert 60 <= gaps[0] < 121 and 120 <= gaps[1] < 241  # backoff with Airflow's jitter


def test_branching(stack: Stack) -> None:
    with DAG("branchy") as dag:

        @task.branch
        def pick() -> str:
            return "left"

        join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        pick() >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")] >> join
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("branchy")
    stack.settle()
    assert stack.states("branchy", run.run_id) == {
        "pick": "success",
        "left": "success",
        "right": "skipped",
        "join": "success",
    }


FAN_CLOCK = dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)


def _fan_out(stack: Stack, width: int) -> None:
    """Map ``width`` tries and reduce them: the run succeeds, counts every
    instance, and the reducer sees every mapped result, in order."""
    with DAG("fan") as dag:

        @task
        def items() -> list[int]:
            return list(range(width))

        @task
        def square(x: int) -> int:
            return x * x

        @task
        def total(values: list[int]) -> int:
            assert len(values) == width
            return sum(values)

        total(square.expand(x=items()))
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("fan")
    stack.settle()
    final = stack.store.get_run("fan", run.run_id)
    assert final.state is DagRunState.SUCCESS
    assert stack.store.run_progress("fan", run.run_id).total == width + 2
    found, value = stack.xcoms[("fan", run.run_id)].pull("total", -1, "return_value")
    assert found and value == sum(x * x for x in range(width))


def test_mapped_fan_out_of_1000() -> None:
    """The scheduler's and worker's logic at full width, on the in-memory
    store; the DynamoDB store runs the same DAG at 250 below."""
    _fan_out(Stack(store=InMemoryStateStore(), clock=FakeClock(FAN_CLOCK)), 1000)


def test_mapped_fan_out_of_250_on_dynamodb() -> None:
    """What DynamoDB adds to a wide map does not grow with the width: expansion
    sets a count on the placeholder item, each try writes its own item and the
    run item's tallies (about nine calls a try at 100 and at 250 alike), and
    1,000 task-instance items (~500 bytes each) fit one 1 MB query page. So
    250 tries prove on DynamoDB what 1,000 did, at a quarter of moto's cost
    (~0.1 CPU s a try); the width itself is proven at 1,000 above."""
    with mock_aws():
        _fan_out(Stack(store=make_dynamo_store(store_settings()), clock=FakeClock(FAN_CLOCK)), 250)


def test_duplicate_task_finished_event_starts_no_second_try(stack: Stack) -> None:
    with DAG("dupes") as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("dupes")
    stack.settle()
    before = len(stack.executor.all)
    message = TaskFinishedMessage(dag_id="dupes", run_id=run.run_id, task_id="a", try_number=1)
    stack.scheduler.handle(message)
    stack.scheduler.handle(message)
    assert len(stack.executor.all) == before
    assert [m.task_id for m in stack.executor.all] == ["a", "b"]


def test_duplicate_invocation_runs_the_try_once(stack: Stack) -> None:
    calls: list[int] = []
    with DAG("twice") as dag:

        @task
        def once() -> None:
            calls.append(1)

        once()
    stack.deploy(dag)
    stack.scheduler.trigger("twice")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    message = stack.executor.invocations.pop(0)
    first = stack.run_worker(message)
    second = stack.run_worker(message)  # Lambda delivered the async invoke twice
    assert first.claimed and not second.claimed
    assert calls == [1]


@pytest.mark.parametrize(("retries", "final"), [(1, "success"), (0, "failed")])
def test_killed_worker_is_reaped_then_retried_or_failed(
    stack: Stack, retries: int, final: str
) -> None:
    with DAG("fragile") as dag:
        EmptyOperator(task_id="a", retries=retries, retry_delay=timedelta(seconds=10))
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("fragile")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    message = stack.executor.invocations.pop(0)
    # the worker claims the try, then its container dies before it reports
    stack.store.transition(
        "fragile",
        run.run_id,
        stack.scheduler.specs.get("fragile", run.version),
        "a",
        -1,
        expected=TaskState.QUEUED,
        new=TaskState.RUNNING,
        try_number=message.try_number,
        now=stack.clock(),
        start_date=stack.clock(),
    )
    assert stack.scheduler.tick().tries_reaped == []  # heartbeat still fresh
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().tries_reaped == [f"{run.run_id}/a"]
    stack.settle()
    assert stack.states("fragile", run.run_id) == {"a": final}
    expected_run = DagRunState.SUCCESS if final == "success" else DagRunState.FAILED
    assert stack.store.get_run("fragile", run.run_id).state is expected_run


def test_hand_off_lost_after_recording_is_recovered_by_the_tick(stack: Stack) -> None:
    with DAG("handoff") as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("handoff")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    message = stack.executor.invocations.pop(0)
    spec = stack.scheduler.specs.get("handoff", run.version)
    # The worker claimed, ran and recorded "a", then died before starting "b".
    for old, new in ((TaskState.QUEUED, TaskState.RUNNING), (TaskState.RUNNING, TaskState.SUCCESS)):
        assert stack.store.transition(
            "handoff",
            run.run_id,
            spec,
            "a",
            -1,
            expected=old,
            new=new,
            try_number=message.try_number,
            now=stack.clock(),
        ).won
    assert stack.scheduler.tick().runs_reconciled == []  # first look: progress noted
    stack.clock.advance(4 * 60)
    assert stack.scheduler.tick().runs_reconciled == []  # not stalled long enough
    stack.clock.advance(2 * 60)
    assert stack.scheduler.tick().runs_reconciled == [f"handoff/{run.run_id}"]
    stack.settle()
    assert stack.states("handoff", run.run_id) == {"a": "success", "b": "success"}
    assert stack.store.get_run("handoff", run.run_id).state is DagRunState.SUCCESS
    assert [m.task_id for m in stack.executor.all] == ["a", "b"]


def test_healthy_runs_are_not_reconciled(stack: Stack) -> None:
    with DAG("healthy") as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag)
    stack.scheduler.trigger("healthy")
    stack.settle()
    stack.clock.advance(3600)
    assert stack.scheduler.tick().runs_reconciled == []


def test_counters_lost_with_a_dying_worker_are_recounted(stack: Stack) -> None:
    with DAG("recount") as dag:

        @task
        def items() -> list[int]:
            return [1, 2, 3]

        @task
        def work(x: int) -> int:
            return x

        work.expand(x=items())
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("recount")
    spec = stack.scheduler.specs.get("recount", run.version)
    # run everything but the last mapped try normally
    stack.settle(drop=lambda m: m.task_id == "work" and m.map_index == 2)
    assert stack.store.get_run("recount", run.run_id).state is DagRunState.RUNNING
    # the last worker claims its try, records its success, then dies before
    # moving the counters
    assert stack.store.claim(
        "recount", run.run_id, spec, "work", 2, 1, stack.clock(), direct=True
    ).won
    assert stack.store.transition(
        "recount",
        run.run_id,
        spec,
        "work",
        2,
        expected=TaskState.RUNNING,
        new=TaskState.SUCCESS,
        try_number=1,
        now=stack.clock(),
        defer_counters=True,
    ).won
    progress = stack.store.run_progress("recount", run.run_id)
    assert progress.finished == progress.total - 1  # the counters are one short
    stack.scheduler.tick()
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().runs_reconciled == [f"recount/{run.run_id}"]
    assert stack.store.get_run("recount", run.run_id).state is DagRunState.SUCCESS
    assert stack.store.run_progress("recount", run.run_id) == type(progress)(4, 4, 0)


@pytest.mark.parametrize(("fail", "expected"), [(False, "success"), (True, "failure")])
def test_dag_callbacks_run_in_a_worker_after_the_run(
    stack: Stack, fail: bool, expected: str
) -> None:
    calls: list[tuple[str, str]] = []
    with DAG(
        "called",
        on_success_callback=lambda ctx: calls.append(("success", ctx["dag_run"].run_id)),
        on_failure_callback=lambda ctx: calls.append(("failure", ctx["reason"])),
    ) as dag:

        @task
        def maybe() -> None:
            if fail:
                raise RuntimeError("no")

        maybe()
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("called")
    stack.settle()
    callback_messages = [m for m in stack.executor.all if m.task_id == "__dag_callback__"]
    assert len(callback_messages) == 1
    assert [c[0] for c in calls] == [expected]
    if not fail:
        assert calls == [("success", run.run_id)]


def test_retry_longer_than_fifteen_minutes_chains_delay_messages(stack: Stack) -> None:
    tries: list[dt.datetime] = []
    with DAG("patient") as dag:

        @task(retries=1, retry_delay=timedelta(minutes=40))
        def flaky(ti=None) -> None:
            tries.append(stack.clock())
            if ti.try_number == 1:
                raise RuntimeError("come back later")

        flaky()
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("patient")
    stack.settle()
    assert stack.store.get_run("patient", run.run_id).state is DagRunState.SUCCESS
    delays = [d for m, d in stack.queue.sent if m.type == "timer"]
    assert delays[:3] == [900, 900, 600]  # SQS's 15-minute cap, re-armed until due
    assert tries[1] - tries[0] >= timedelta(minutes=40)


class _Watch:
    """Records the slots in use on a counter each time a try is dispatched."""

    def __init__(self, stack: Stack, key: str):
        self.seen: list[int] = []
        original = stack.executor.dispatch

        def watching(message, spec):  # type: ignore[no-untyped-def]
            self.seen.append(stack.store.used(key))
            return original(message, spec)

        stack.executor.dispatch = watching  # type: ignore[method-assign]


def test_max_active_tasks_limits_tries_and_priority_picks_the_next(stack: Stack) -> None:
    with DAG("limits", max_active_tasks=2, max_active_runs=1) as dag:
        for i, weight in enumerate([1, 5, 3, 9, 2, 7]):
            EmptyOperator(task_id=f"t{i}", priority_weight=weight)
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("limits")
    watch = _Watch(stack, dag_run_key("limits", run.run_id))
    stack.settle()
    assert stack.store.get_run("limits", run.run_id).state is DagRunState.SUCCESS
    assert max(watch.seen) <= 2 and len(watch.seen) == 6
    assert stack.store.used(dag_run_key("limits", run.run_id)) == 0
    order = [m.task_id for m in stack.executor.all]
    assert order == ["t3", "t5", "t1", "t2", "t4", "t0"]  # by priority_weight


def test_max_active_tasks_limits_each_run_as_in_airflow_3(stack: Stack) -> None:
    """Airflow 3 counts max_active_tasks per run (apache/airflow#42953): two
    active runs of a DAG limited to 2 may run 2 tries each, 4 at once."""
    with DAG("per_run", max_active_tasks=2, max_active_runs=2) as dag:
        for i in range(3):
            EmptyOperator(task_id=f"t{i}")
    stack.deploy(dag)
    runs = [stack.scheduler.trigger("per_run", run_id=f"r{i}")[0] for i in range(2)]
    while stack.queue.pending:
        stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    started = sorted(m.run_id for m in stack.executor.invocations)
    assert started == ["r0", "r0", "r1", "r1"]
    for run in runs:
        assert stack.store.used(dag_run_key("per_run", run.run_id)) == 2
        assert list(stack.states("per_run", run.run_id).values()).count("scheduled") == 1
    stack.settle()
    for run in runs:
        assert stack.store.get_run("per_run", run.run_id).state is DagRunState.SUCCESS
        assert stack.store.used(dag_run_key("per_run", run.run_id)) == 0
        # the run's own counter went with it: nothing stays in the pools table
        assert not counter_stored(stack, dag_run_key("per_run", run.run_id))


def counter_stored(stack: Stack, key: str) -> bool:
    if isinstance(stack.store, InMemoryStateStore):
        return key in stack.store._used
    return stack.store.models.pool.count(key) > 0  # type: ignore[attr-defined]


def test_a_counter_still_held_stays_when_its_run_ends(stack: Stack) -> None:
    with DAG("straggler", max_active_tasks=1) as dag:
        EmptyOperator(task_id="a")
        EmptyOperator(task_id="b")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("straggler")
    while stack.queue.pending:
        stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    key = dag_run_key("straggler", run.run_id)
    assert stack.store.used(key) == 1
    spec = stack.scheduler.specs.get("straggler", run.version)
    stack.scheduler.finish_run(spec, run, DagRunState.FAILED, stack.clock())  # marked failed
    assert counter_stored(stack, key) and stack.store.used(key) == 1
    stack.settle()  # the straggler ends and gives its slot back
    assert stack.store.used(key) == 0


def test_pool_slots_are_shared_across_dags(stack: Stack) -> None:
    stack.store.set_pool("warehouse", 1)
    for name in ("left", "right"):
        with DAG(name, max_active_runs=1) as dag:
            EmptyOperator(task_id="load", pool="warehouse")
            EmptyOperator(task_id="free")
        stack.deploy(dag)
    watch = _Watch(stack, "pool:warehouse")
    runs = [stack.scheduler.trigger(name)[0] for name in ("left", "right")]
    stack.settle()
    for run in runs:
        assert stack.store.get_run(run.dag_id, run.run_id).state is DagRunState.SUCCESS
    assert max(watch.seen) <= 1
    assert stack.store.used("pool:warehouse") == 0


def test_a_try_in_a_missing_pool_waits(stack: Stack) -> None:
    with DAG("orphan", max_active_runs=1) as dag:
        EmptyOperator(task_id="stuck", pool="nowhere")
        EmptyOperator(task_id="fine")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("orphan")
    stack.settle()
    assert stack.states("orphan", run.run_id) == {"stuck": "scheduled", "fine": "success"}
    assert stack.store.get_run("orphan", run.run_id).state is DagRunState.RUNNING
    stack.store.set_pool("nowhere", 1)
    stack.clock.advance(120)  # past the pools cache
    assert stack.scheduler.tick().tries_promoted == [f"{run.run_id}/stuck"]
    stack.settle()
    assert stack.store.get_run("orphan", run.run_id).state is DagRunState.SUCCESS


def test_reaped_try_gives_its_slot_back(stack: Stack) -> None:
    with DAG("crashy", max_active_tasks=1, max_active_runs=1) as dag:
        EmptyOperator(task_id="a")
        EmptyOperator(task_id="b")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("crashy")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    first = stack.executor.invocations.pop(0)  # its worker claims it, then dies
    spec = stack.scheduler.specs.get("crashy", run.version)
    stack.store.transition(
        "crashy",
        run.run_id,
        spec,
        first.task_id,
        -1,
        expected=TaskState.QUEUED,
        new=TaskState.RUNNING,
        try_number=1,
        now=stack.clock(),
    )
    assert (
        stack.executor.invocations == []
        and stack.store.used(dag_run_key("crashy", run.run_id)) == 1
    )
    stack.scheduler.tick()  # the minute tick notes the run's progress
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().tries_reaped == [f"{run.run_id}/{first.task_id}"]
    stack.settle()  # the slot came back and the other task ran
    other = "b" if first.task_id == "a" else "a"
    assert stack.states("crashy", run.run_id) == {first.task_id: "failed", other: "success"}
    assert stack.store.used(dag_run_key("crashy", run.run_id)) == 0


def test_a_lost_retry_timer_is_re_armed_by_reconciliation(stack: Stack) -> None:
    with DAG("lost_timer", max_active_runs=1) as dag:

        @task(retries=1, retry_delay=timedelta(seconds=30))
        def flaky(ti=None) -> None:
            if ti.try_number == 1:
                raise RuntimeError("once")

        flaky()
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("lost_timer")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    stack.run_worker(stack.executor.invocations.pop(0))
    timers = [m for m, _ in stack.queue.pending if m.type == "timer"]
    assert len(timers) == 1
    stack.queue.pending.clear()  # the delay message is lost
    stack.scheduler.tick()
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().runs_reconciled == [f"lost_timer/{run.run_id}"]
    stack.settle()
    assert stack.states("lost_timer", run.run_id) == {"flaky": "success"}
    assert stack.store.get_run("lost_timer", run.run_id).state is DagRunState.SUCCESS


def test_a_map_that_fits_the_limit_claims_nothing_and_starts_directly(stack: Stack) -> None:
    stack.deploy(mapped_dag("fits", width=14, max_active_tasks=16))
    run, _ = stack.scheduler.trigger("fits")
    watch = _Watch(stack, dag_run_key("fits", run.run_id))
    stack.settle()
    assert stack.store.get_run("fits", run.run_id).state is DagRunState.SUCCESS
    # Nothing can run beside "items", the map or "done", and the map's 14
    # tries fit the limit once it is expanded: no try claims a slot.
    assert watch.seen == [0] * 16
    assert stack.store.used(dag_run_key("fits", run.run_id)) == 0
    direct = [(m.task_id, m.map_index) for m in stack.executor.all if m.direct]
    assert direct == [("work", i) for i in range(14)] + [("done", -1)]
    assert stack.states("fits", run.run_id)["done"] == "success"


def test_a_map_wider_than_the_limit_runs_through_a_window(stack: Stack) -> None:
    stack.deploy(mapped_dag("wide", width=20, max_active_tasks=16))
    run, _ = stack.scheduler.trigger("wide")
    watch = _Watch(stack, dag_run_key("wide", run.run_id))
    stack.settle()
    assert stack.store.get_run("wide", run.run_id).state is DagRunState.SUCCESS
    # Only the map can reach the limit ("items" and "done" never run beside
    # it): it starts 16 indices, and each finished try starts the next one
    # (core.map_window; tests/scheduler/test_map_windows.py checks the limit
    # holds). No try takes a slot.
    assert set(watch.seen) == {0}
    direct = [(m.task_id, m.map_index) for m in stack.executor.all if m.direct]
    assert direct == [("work", i) for i in range(20)] + [("done", -1)]


class _FailingDirect:
    """An executor that refuses every direct dispatch (a throttled invoke)."""

    def __init__(self, stack: Stack):
        self.refused: list[str] = []
        original = stack.executor.dispatch

        def dispatch(message, spec):  # type: ignore[no-untyped-def]
            from chalicelib.executors.base import DispatchError

            if message.direct:
                self.refused.append(message.label)
                raise DispatchError("throttled")
            return original(message, spec)

        stack.executor.dispatch = dispatch  # type: ignore[method-assign]


def test_a_refused_direct_dispatch_is_queued_and_dispatched_as_usual(stack: Stack) -> None:
    with DAG("refused", max_active_runs=1) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag)
    refusing = _FailingDirect(stack)
    run, _ = stack.scheduler.trigger("refused")
    stack.settle()
    assert [label.split("/")[-1] for label in refusing.refused] == ["b#1"]
    assert [(m.task_id, m.direct) for m in stack.executor.all] == [("a", False), ("b", False)]
    assert stack.store.get_run("refused", run.run_id).state is DagRunState.SUCCESS


def test_a_lost_direct_dispatch_is_started_by_reconciliation(stack: Stack) -> None:
    with DAG("lost_invoke", max_active_runs=1) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("lost_invoke")
    stack.settle(drop=lambda m: m.direct)  # the invoke of "b" never arrives
    assert stack.states("lost_invoke", run.run_id) == {"a": "success", "b": "none"}
    stack.scheduler.tick()
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().runs_reconciled == [f"lost_invoke/{run.run_id}"]
    stack.settle()
    assert stack.states("lost_invoke", run.run_id) == {"a": "success", "b": "success"}
    assert stack.store.get_run("lost_invoke", run.run_id).state is DagRunState.SUCCESS
    # the lost message, delivered late after all, starts nothing
    late = next(m for m in stack.executor.all if m.direct)
    assert not stack.run_worker(late).claimed


def test_a_slot_goes_back_with_the_outcome_even_if_the_worker_dies_next(
    stack: Stack,
) -> None:
    with DAG("handback", max_active_tasks=1, max_active_runs=1) as dag:
        EmptyOperator(task_id="first", priority_weight=2)
        EmptyOperator(task_id="second", priority_weight=1)
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("handback")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    message = stack.executor.invocations.pop(0)
    assert message.task_id == "first" and stack.store.used(dag_run_key("handback", run.run_id)) == 1
    spec = stack.scheduler.specs.get("handback", run.version)
    # The worker claims, runs and records "first", then dies before anything else.
    claim = stack.store.claim("handback", run.run_id, spec, "first", -1, 1, stack.clock())
    assert claim.won and claim.instance is not None and claim.instance.slots
    assert stack.store.transition(
        "handback",
        run.run_id,
        spec,
        "first",
        -1,
        expected=TaskState.RUNNING,
        new=TaskState.SUCCESS,
        try_number=1,
        now=stack.clock(),
        defer_counters=True,
        slots=(),
        releases=claim.instance.slots,
    ).won
    # The slot went back with the outcome: nothing is left counted without a holder.
    assert stack.store.used(dag_run_key("handback", run.run_id)) == 0
    assert stack.states("handback", run.run_id)["second"] == "scheduled"
    assert stack.scheduler.tick().tries_promoted == [f"{run.run_id}/second"]
    stack.settle()
    # "first"'s run counters were lost with its worker: the run stalls one short,
    # and reconciliation recounts it and finishes it.
    assert stack.store.get_run("handback", run.run_id).state is DagRunState.RUNNING
    for _ in range(2):
        stack.clock.advance(6 * 60)
        stack.scheduler.tick()
    assert stack.store.get_run("handback", run.run_id).state is DagRunState.SUCCESS
    assert stack.store.used(dag_run_key("handback", run.run_id)) == 0


def test_workers_take_the_run_from_their_message(stack: Stack) -> None:
    with DAG("snapshot", max_active_runs=1) as dag:

        @task
        def show(dag_run=None, params=None) -> str:
            return f"{dag_run.run_type}:{dag_run.conf['who']}"

        EmptyOperator(task_id="start") >> show()
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("snapshot", conf={"who": "ada"})
    reads: list[str] = []
    original = stack.store.get_run

    def counting_get_run(dag_id, run_id):  # type: ignore[no-untyped-def]
        reads.append(run_id)
        return original(dag_id, run_id)

    stack.store.get_run = counting_get_run  # type: ignore[method-assign]
    stack.settle()
    assert stack.store.get_run("snapshot", run.run_id).state is DagRunState.SUCCESS
    found, value = stack.xcoms[("snapshot", run.run_id)].pull("show", -1, "return_value")
    assert found and value == "manual:ada"
    assert all(m.run is not None for m in stack.executor.all)
    assert reads.count(run.run_id) == 2  # the queue message's handler, and the check above


def test_a_run_with_a_large_conf_is_read_by_its_workers(stack: Stack) -> None:
    with DAG("bigconf", max_active_runs=1) as dag:
        EmptyOperator(task_id="only")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("bigconf", conf={"blob": "x" * 5_000})
    stack.settle()
    assert [m.run for m in stack.executor.all] == [None]  # too big for an ECS override
    assert stack.store.get_run("bigconf", run.run_id).state is DagRunState.SUCCESS


def test_a_hand_off_that_loses_the_expansion_dispatches_none_of_the_map(stack: Stack) -> None:
    from chalicelib.core.engine import ExpandTask, ScheduleTask

    stack.deploy(mapped_dag("lost_map", width=3, max_active_tasks=16))
    run, _ = stack.scheduler.trigger("lost_map")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    run = stack.store.get_run("lost_map", run.run_id)
    spec = stack.scheduler.specs.get("lost_map", run.version)
    expand = ExpandTask("work", 3)
    # another writer (a reconciling scheduler) expanded the map first
    assert stack.store.apply("lost_map", run.run_id, spec, [expand], stack.clock()) == [expand]
    task = spec.task("work")
    tries = [
        ScheduleTask("work", i, TaskState.NONE, 1, 1, task.pool, task.pool_slots, task.executor)
        for i in range(3)
    ]
    before = len(stack.executor.all)
    effective = stack.scheduler._apply(spec, run, [expand, *tries], stack.clock(), direct=True)
    assert effective == [] and len(stack.executor.all) == before
    # the winner's own direct dispatch would have started them; here they wait for it
    assert stack.states("lost_map", run.run_id)["work[0]"] == "none"


def test_a_queued_try_whose_invoke_was_lost_is_dispatched_again(stack: Stack) -> None:
    with DAG("lost_queued", max_active_runs=1) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    stack.deploy(dag)
    run, _ = stack.scheduler.trigger("lost_queued")
    stack.scheduler.handle(stack.queue.pending.pop(0)[0])
    lost = stack.executor.invocations.pop(0)  # queued, but its invoke never arrives
    assert stack.states("lost_queued", run.run_id) == {"a": "queued", "b": "none"}
    stack.scheduler.tick()
    stack.clock.advance(6 * 60)
    stack.scheduler.tick()  # stalled, but not queued for long enough to be lost
    assert stack.executor.invocations == []
    stack.clock.advance(6 * 60)
    assert stack.scheduler.tick().runs_reconciled == [f"lost_queued/{run.run_id}"]
    again = stack.executor.invocations[0]
    assert (again.task_id, again.try_number) == ("a", 1)
    stack.settle()
    assert stack.states("lost_queued", run.run_id) == {"a": "success", "b": "success"}
    assert stack.store.get_run("lost_queued", run.run_id).state is DagRunState.SUCCESS
    assert not stack.run_worker(lost).claimed  # the first invoke, arriving at last, runs nothing
