"""dag.test(): one run to the end in-process, with the real engine and runtime."""

from __future__ import annotations

import datetime as dt
import threading
from datetime import timedelta

import pendulum
import pytest

from chalicelib.core.errors import DagValidationError, SlipstreamError
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk import DAG, TaskFailed, TaskSkipped, TriggerRule, task
from operators.bash import BashOperator
from operators.empty import EmptyOperator
from operators.python import PythonOperator

FIXED = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return FIXED


def test_result_shape_and_airflow_state_names() -> None:
    with DAG("shape") as dag:

        @task
        def make() -> list[int]:
            return [1, 2, 3]

        @task
        def double(x: int) -> int:
            return 2 * x

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        total(double.expand(x=make()))

    result = dag.test()
    assert result.state == "success"
    assert result.task_states == {
        "make": "success",
        "double[0]": "success",
        "double[1]": "success",
        "double[2]": "success",
        "total": "success",
    }
    assert result.tries == dict.fromkeys(result.task_states, 1)


def test_results_flow_between_tasks() -> None:
    seen: dict[str, object] = {}
    with DAG("flow") as dag:

        @task
        def make() -> list[int]:
            return [1, 2, 3]

        @task
        def double(x: int) -> int:
            return 2 * x

        @task
        def total(values: list[int]) -> None:
            seen["values"] = list(values)

        total(double.expand(x=make()))

    assert run_dag_test(dag, show=False).succeeded
    assert seen["values"] == [2, 4, 6]


def test_retries_skip_the_delay_on_a_virtual_clock() -> None:
    attempts: list[int] = []
    with DAG("retrying") as dag:

        @task(retries=3, retry_delay=timedelta(minutes=30))
        def flaky(ti=None) -> str:
            attempts.append(ti.try_number)
            if ti.try_number < 3:
                raise RuntimeError("not yet")
            return "ok"

        flaky() >> EmptyOperator(task_id="after")

    result = run_dag_test(dag, show=False, clock=fixed_clock)
    assert result.state == "success"
    assert attempts == [1, 2, 3]
    assert result.tries == {"flaky": 3, "after": 1}
    retries = [r for r in result.history if r.state.value == "up_for_retry"]
    assert [r.retry_delay for r in retries] == [1800, 1800]


def test_retries_exhausted_fail_the_run_and_mark_downstream() -> None:
    with DAG("exhausted") as dag:

        @task(retries=1, retry_delay=timedelta(seconds=5))
        def broken() -> None:
            raise ValueError("bad input row 7")

        broken() >> EmptyOperator(task_id="after")

    result = run_dag_test(dag, show=False)
    assert result.state == "failed"
    assert result.task_states == {"broken": "failed", "after": "upstream_failed"}
    assert result.tries["broken"] == 2
    assert result.errors == {"broken": "ValueError: bad input row 7"}


def test_task_skipped_and_task_failed() -> None:
    with DAG("steering") as dag:

        @task
        def skip_me() -> None:
            raise TaskSkipped("nothing new")

        @task(retries=5)
        def give_up() -> None:
            raise TaskFailed("credentials revoked")

        skip_me() >> EmptyOperator(task_id="below_skip")
        give_up()

    result = run_dag_test(dag, show=False)
    assert result.task_states == {
        "skip_me": "skipped",
        "below_skip": "skipped",
        "give_up": "failed",
    }
    assert result.tries["give_up"] == 1
    assert result.state == "failed"


def test_tasks_run_in_parallel_when_dependencies_allow() -> None:
    barrier = threading.Barrier(3, timeout=10)
    with DAG("parallel", max_active_tasks=4) as dag:
        for i in range(3):
            PythonOperator(task_id=f"p{i}", python_callable=barrier.wait)
    # Each task waits for the other two: this only succeeds if all three run at once.
    assert run_dag_test(dag, show=False).succeeded


def test_execution_timeout_fails_the_try() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    with DAG("slow") as dag:
        PythonOperator(
            task_id="spin", python_callable=spin, execution_timeout=timedelta(seconds=0.3)
        )
    try:
        result = run_dag_test(dag, show=False)
    finally:
        stop.set()
    assert result.task_states == {"spin": "failed"}
    assert "Timeout" in result.errors["spin"]


def test_dagrun_timeout_on_the_virtual_clock() -> None:
    with DAG("timeboxed", dagrun_timeout=timedelta(minutes=10)) as dag:

        @task(retries=2, retry_delay=timedelta(hours=1))
        def flaky() -> None:
            raise RuntimeError("down")

        flaky() >> EmptyOperator(task_id="after")

    result = run_dag_test(dag, show=False, clock=fixed_clock)
    # the first retry would start after an hour; the run times out after ten minutes
    assert result.state == "failed"
    assert result.task_states == {"flaky": "skipped", "after": "skipped"}
    assert result.tries["flaky"] == 1


def test_branching_and_join() -> None:
    with DAG("branchy") as dag:

        @task.branch
        def pick() -> str:
            return "left"

        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")
        join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        pick() >> [left, right] >> join

    result = run_dag_test(dag, show=False)
    assert result.task_states == {
        "pick": "success",
        "left": "success",
        "right": "skipped",
        "join": "success",
    }


def test_templated_bash_with_conf_and_logical_date(tmp_path) -> None:
    out = tmp_path / "out.txt"
    with DAG("templated", params={"who": "world"}) as dag:
        BashOperator(
            task_id="say",
            bash_command="echo '{{ ds }} {{ params.who }} {{ dag_run.conf.n }}' > " + str(out),
        )
    result = run_dag_test(
        dag,
        show=False,
        logical_date="2024-02-29T10:00:00+00:00",
        conf={"n": 7},
    )
    assert result.succeeded
    assert out.read_text().strip() == "2024-02-29 world 7"
    assert result.logical_date == dt.datetime(2024, 2, 29, 10, tzinfo=dt.UTC)


def test_naive_logical_date_is_in_the_dag_timezone() -> None:
    with DAG(
        "tz", start_date=pendulum.datetime(2024, 1, 1, tz="America/New_York"), schedule=None
    ) as dag:
        EmptyOperator(task_id="noop")
    result = run_dag_test(dag, show=False, logical_date=dt.datetime(2024, 7, 1, 9, 0))
    assert result.logical_date == dt.datetime(2024, 7, 1, 13, 0, tzinfo=dt.UTC)


def test_invalid_dag_raises_before_running() -> None:
    ran: list[str] = []
    with DAG("cyclic") as dag:
        a = PythonOperator(task_id="a", python_callable=lambda: ran.append("a"))
        b = PythonOperator(task_id="b", python_callable=lambda: ran.append("b"))
        a >> b >> a
    with pytest.raises(DagValidationError) as info:
        run_dag_test(dag, show=False)
    assert "cycle" in str(info.value)
    assert ran == []


def test_bad_logical_date_is_a_clear_error() -> None:
    with DAG("dates") as dag:
        EmptyOperator(task_id="noop")
    with pytest.raises(SlipstreamError, match="bad logical date 'yesterday'"):
        run_dag_test(dag, show=False, logical_date="yesterday")


def test_dag_callbacks_run_after_the_run() -> None:
    calls: list[str] = []
    with DAG(
        "callbacks",
        on_success_callback=lambda ctx: calls.append(f"success {ctx['dag_run'].run_id}"),
        on_failure_callback=lambda ctx: calls.append("failure"),
    ) as dag:
        EmptyOperator(task_id="noop")
    result = run_dag_test(dag, show=False)
    assert calls == [f"success {result.run_id}"]


def test_summary_is_printed(capsys) -> None:
    with DAG("printed") as dag:
        EmptyOperator(task_id="noop")
    dag.test()
    out = capsys.readouterr().out
    assert "noop" in out and "success" in out and "Run success" in out


def test_mapped_results_are_a_sequence_even_when_nothing_was_pushed() -> None:
    seen: list[object] = []
    with DAG("nones") as dag:

        @task
        def work(x: int) -> None:
            return None

        @task
        def count(results) -> None:
            seen.append(list(results))

        count(work.expand(x=[1, 2, 3]))

    assert run_dag_test(dag, show=False).succeeded
    assert seen == [[]]


class SteppedClock:
    """A clock that only moves when a task moves it: time passing inside a try."""

    def __init__(self) -> None:
        self.now = FIXED

    def __call__(self) -> dt.datetime:
        return self.now


def test_dagrun_timeout_applies_to_time_spent_in_a_try() -> None:
    clock = SteppedClock()

    def takes_an_hour() -> None:
        clock.now += timedelta(hours=1)

    with DAG("slow_run", dagrun_timeout=timedelta(minutes=10)) as dag:
        PythonOperator(task_id="slow", python_callable=takes_an_hour) >> EmptyOperator(
            task_id="after"
        )

    result = run_dag_test(dag, show=False, clock=clock)

    # Deployed, the timer fires while "slow" runs: the run fails, nothing more starts.
    assert result.state == "failed"
    assert result.reason == "dagrun_timeout exceeded"
    assert result.task_states == {"slow": "skipped", "after": "skipped"}


def test_the_summary_says_why_the_run_failed(capsys) -> None:
    clock = SteppedClock()

    def takes_an_hour() -> None:
        clock.now += timedelta(hours=1)

    with DAG("slow_summary", dagrun_timeout=timedelta(minutes=10)) as dag:
        PythonOperator(task_id="slow", python_callable=takes_an_hour)

    run_dag_test(dag, clock=clock)

    out = capsys.readouterr().out
    run_line = next(line for line in out.splitlines() if line.startswith("Run "))
    assert run_line.startswith("Run failed") and run_line.endswith(": dagrun_timeout exceeded")
