"""Every validation problem, located: small broken DAG files, one problem each."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.core.cron_timetables import CronDataIntervalTimetable
from chalicelib.core.errors import DagValidationError, Problem
from chalicelib.core.spec import DagSpec, ExecutorSpec, MappingSpec, MapSource, TaskSpec
from chalicelib.core.validation import find_cycles, param_value_problem, validate_spec
from chalicelib.sdk.loader import load_dags
from tests.sdk.dagfiles import line_of, write_dag

HEADER = """
import datetime as dt
from chalicelib.sdk import DAG, Param, task
from operators.empty import EmptyOperator
from operators.python import PythonOperator
"""

# (case id, DAG file body, marker on the line the problem must point at, message start)
CASES = [
    (
        "duplicate_task_id",
        """
        with DAG("d"):
            EmptyOperator(task_id="a")
            EmptyOperator(task_id="a")  # here
        """,
        "duplicate task id 'a'",
    ),
    (
        "cycle",
        """
        with DAG("d"):
            a = EmptyOperator(task_id="a")  # here
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> b >> c >> a
        """,
        "cycle: a -> b -> c -> a",
    ),
    (
        "self_cycle",
        """
        with DAG("d"):
            a = EmptyOperator(task_id="a")  # here
            a >> a
        """,
        "cycle: a -> a",
    ),
    (
        "unknown_upstream",
        """
        other = DAG("other")
        foreign = EmptyOperator(task_id="foreign", dag=other)
        with DAG("d"):
            a = EmptyOperator(task_id="a")  # here
            foreign >> a
        """,
        "upstream task 'foreign' is not in this DAG",
    ),
    (
        "bad_cron",
        """
        with DAG("d", schedule="61 * * * *", start_date=dt.datetime(2024, 1, 1)):  # here
            EmptyOperator(task_id="a")
        """,
        "bad schedule '61 * * * *'",
    ),
    (
        "bad_preset",
        """
        with DAG("d", schedule="@fortnightly", start_date=dt.datetime(2024, 1, 1)):  # here
            EmptyOperator(task_id="a")
        """,
        "bad schedule '@fortnightly'",
    ),
    (
        "bad_timezone",
        """
        with DAG("d", timezone="Mars/Olympus"):  # here
            EmptyOperator(task_id="a")
        """,
        "unknown timezone 'Mars/Olympus'",
    ),
    (
        "start_after_end",
        """
        with DAG("d", start_date=dt.datetime(2024, 2, 1), end_date=dt.datetime(2024, 1, 1)):  # here
            EmptyOperator(task_id="a")
        """,
        "start_date 2024-02-01T00:00:00+00:00 is after end_date",
    ),
    (
        "cron_without_start_date",
        """
        with DAG("d", schedule="@daily"):  # here
            EmptyOperator(task_id="a")
        """,
        "a 'cron_trigger' schedule needs a start_date",
    ),
    (
        "timedelta_without_start_date",
        """
        with DAG("d", schedule=dt.timedelta(hours=1)):  # here
            EmptyOperator(task_id="a")
        """,
        "a 'delta_trigger' schedule needs a start_date",
    ),
    (
        "mapping_over_a_scalar",
        """
        with DAG("d"):
            PythonOperator.partial(task_id="m", python_callable=print).expand(op_args=7)  # here
        """,
        "mapped argument 'op_args' must be a list or dict",
    ),
    (
        "mapping_over_a_string",
        """
        @task
        def f(x):
            return x
        with DAG("d"):
            f.expand(x="abc")  # here
        """,
        "mapped argument 'x' must be a list or dict",
    ),
    (
        "unknown_trigger_rule",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", trigger_rule="whenever")  # here
        """,
        "unknown trigger rule 'whenever'",
    ),
    (
        "unknown_executor",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", executor="kubernetes")  # here
        """,
        "unknown executor 'kubernetes'",
    ),
    (
        "lambda_try_longer_than_lambda_allows",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", execution_timeout=dt.timedelta(minutes=20))  # here
        """,
        "execution_timeout 1200 s is longer than the worker Lambda's 900 s limit",
    ),
    (
        "container_settings_off_ecs",
        """
        from chalicelib.sdk import ExecutorConfig
        with DAG("d"):
            EmptyOperator(task_id="a", executor=ExecutorConfig("lambda", image="x"))  # here
        """,
        "executor 'lambda' ignores container settings image",
    ),
    (
        "empty_pool",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", pool=" ")  # here
        """,
        "pool name must not be empty",
    ),
    (
        "pool_slots",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", pool_slots=0)  # here
        """,
        "pool_slots must be at least 1",
    ),
    (
        "negative_retries",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", retries=-2)  # here
        """,
        "retries must not be negative",
    ),
    (
        "non_integer_retries",
        """
        with DAG("d"):
            EmptyOperator(task_id="a", retries="many")  # here
        """,
        "retries must be an int",
    ),
    (
        "max_active_runs",
        """
        with DAG("d", max_active_runs=0):  # here
            EmptyOperator(task_id="a")
        """,
        "max_active_runs must be at least 1",
    ),
    (
        "bad_task_id",
        """
        with DAG("d"):
            EmptyOperator(task_id="has space")  # here
        """,
        "task_id 'has space' may contain only",
    ),
    (
        "bad_param_default",
        """
        with DAG("d", params={"n": Param("x", type="integer")}):  # here
            EmptyOperator(task_id="a")
        """,
        "default of param 'n': 'x' is not of type integer",
    ),
    (
        "two_time_schedules",
        """
        with DAG("d", schedule=["@daily", "@hourly"], start_date=dt.datetime(2024, 1, 1)):  # here
            EmptyOperator(task_id="a")
        """,
        "schedule may combine event triggers with at most one time-based schedule",
    ),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_reported_with_file_and_line(
    tmp_path: Path, body: str, message: str
) -> None:
    import textwrap

    source = HEADER + textwrap.dedent(body)
    path = write_dag(tmp_path, "case.py", source)

    result = load_dags([str(path)])

    matching = [p for p in result.problems if p.message.startswith(message)]
    assert matching, f"no problem starting with {message!r} in {[str(p) for p in result.problems]}"
    problem = matching[0]
    assert problem.file is not None and Path(problem.file).resolve() == path.resolve()
    assert problem.line == line_of(path, "# here")
    assert problem.dag_id == "d"


def test_all_problems_of_a_dag_are_reported_at_once(tmp_path: Path) -> None:
    import textwrap

    path = write_dag(
        tmp_path,
        "many.py",
        HEADER
        + textwrap.dedent(
            """
            with DAG("d", max_active_runs=0, timezone="Nowhere/Town") as dag:
                a = EmptyOperator(task_id="a", retries=-1)
                b = EmptyOperator(task_id="b", executor="gpu")
                a >> b >> a
            """
        ),
    )
    dag = load_dags([str(path)], check=False).dags["d"]

    with pytest.raises(DagValidationError) as caught:
        dag.validate()

    messages = [p.message.split(";")[0].split(",")[0] for p in caught.value.problems]
    assert messages == [
        "unknown timezone 'Nowhere/Town'",
        "max_active_runs must be at least 1",
        "retries must not be negative",
        "unknown executor 'gpu'",
        "cycle: a -> b -> a",
    ]
    assert (
        str(caught.value)
        .splitlines()[0]
        .endswith(
            "DAG 'd': unknown timezone 'Nowhere/Town'; use an IANA name such as 'Europe/Paris'"
        )
    )


def spec_of(tasks: dict[str, TaskSpec], **fields: object) -> DagSpec:
    return DagSpec(dag_id="d", tasks=tasks, sdk_version="t", fileloc="dags/d.py", **fields)  # type: ignore[arg-type]


def test_valid_spec_has_no_problems() -> None:
    spec = spec_of(
        {
            "a": TaskSpec(task_id="a", operator="x.A", downstream=["b"]),
            "b": TaskSpec(task_id="b", operator="x.B", upstream=["a"]),
        }
    )

    assert validate_spec(spec) == []


def test_hand_written_spec_problems_use_its_fileloc_and_task_lines() -> None:
    spec = spec_of(
        {
            "m": TaskSpec(
                task_id="m",
                operator="x.M",
                line=7,
                upstream=["ghost"],
                mapping=MappingSpec(
                    kind="expand", sources={"x": MapSource(xcom_task_id="elsewhere")}
                ),
                executor=ExecutorSpec(kind="ecs", cpu=0),
                weight_rule="sideways",
            )
        }
    )

    problems = validate_spec(spec)

    assert {p.message for p in problems} == {
        "upstream task 'ghost' is not in this DAG",
        "mapped argument 'x' reads the result of unknown task 'elsewhere'",
        "executor cpu must be positive, got 0",
        "unknown weight_rule 'sideways'; choose one of: downstream, upstream, absolute",
    }
    assert all(p.file == "dags/d.py" and p.line == 7 and p.task_id == "m" for p in problems)
    assert validate_spec(spec, file="other.py")[0].file == "other.py"


def test_cycles_are_found_through_upstream_lists_too() -> None:
    spec = spec_of(
        {
            "a": TaskSpec(task_id="a", operator="x", upstream=["c"]),
            "b": TaskSpec(task_id="b", operator="x", upstream=["a"]),
            "c": TaskSpec(task_id="c", operator="x", upstream=["b"]),
            "d": TaskSpec(task_id="d", operator="x", upstream=["d"]),
            "e": TaskSpec(task_id="e", operator="x", upstream=["a"]),
        }
    )

    assert find_cycles(spec) == [["a", "b", "c"], ["d"]]


def test_cycle_search_is_linear_enough_for_a_long_chain() -> None:
    n = 20_000
    tasks = {
        f"t{i}": TaskSpec(
            task_id=f"t{i}", operator="x", downstream=[f"t{i + 1}"] if i + 1 < n else ["t0"]
        )
        for i in range(n)
    }

    (cycle,) = find_cycles(spec_of(tasks))

    assert len(cycle) == n and cycle[0] == "t0"


def test_timetable_problems_come_from_its_validate() -> None:
    spec = spec_of(
        {},
        timetable=CronDataIntervalTimetable(expression="not a cron"),
        start_date=__import__("datetime").datetime(2024, 1, 1, tzinfo=__import__("datetime").UTC),
    )

    (problem,) = validate_spec(spec)
    assert problem.message.startswith("bad schedule:") and problem.dag_id == "d"


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        (1, {"type": "integer"}, None),
        (True, {"type": "integer"}, "param 'p': True is not of type integer"),
        (1.5, {"type": "number"}, None),
        (None, {"type": ["null", "string"]}, None),
        ("a", {"enum": ["a", "b"]}, None),
        ("abc", {"type": "string", "maxLength": 2}, "param 'p': 'abc' is longer than 2 characters"),
        (11, {"maximum": 10}, "param 'p': 11 is greater than the maximum 10"),
        ([1], {"type": "array"}, None),
        ({"a": 1}, {"type": "object"}, None),
    ],
)
def test_param_value_checks(value: object, schema: dict[str, object], expected: str | None) -> None:
    assert param_value_problem("p", value, schema) == expected


def test_problem_renders_file_line_dag_and_task() -> None:
    problem = Problem("boom", file="dags/x.py", line=3, dag_id="d", task_id="t")

    assert str(problem) == "dags/x.py:3: DAG 'd' task 't': boom"
