from __future__ import annotations

import os
from typing import Any

import pytest

from chalicelib.sdk import DAG, XComArg, dag, task
from chalicelib.sdk.params import DagParam
from operators.python import DecoratedPythonOperator, PythonOperator


class FakeTI:
    def __init__(self, results: dict[tuple[str, str], Any] | None = None):
        self.results = results or {}
        self.skipped: list[list[str]] = []

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.results[(task_ids, key)]

    def skip_downstream(self, task_ids: list[str]) -> None:
        self.skipped.append(list(task_ids))


def test_calling_a_task_returns_an_xcomarg_and_arguments_add_edges() -> None:
    @task
    def extract() -> list[int]:
        return [1, 2]

    @task(retries=3)
    def load(rows: list[int], table: str) -> None:
        return None

    with DAG("d") as built:
        rows = extract()
        loaded = load(rows, table="t")

    assert isinstance(rows, XComArg) and rows.key == "return_value"
    op = built.get_task("load")
    assert isinstance(op, DecoratedPythonOperator) and isinstance(op, PythonOperator)
    assert op.upstream_task_ids == {"extract"} and op.retries == 3
    assert op.op_args == [rows] and op.op_kwargs == {"table": "t"}
    assert loaded.operator is op


def test_nested_xcomargs_in_containers_add_edges() -> None:
    @task
    def a() -> int:
        return 1

    @task
    def use(payload: dict[str, Any]) -> None:
        return None

    with DAG("d") as built:
        use({"items": [a(), {"deep": a()}]})

    assert built.get_task("use").upstream_task_ids == {"a", "a__1"}


def test_repeated_calls_get_airflow_suffixes() -> None:
    @task
    def step() -> None:
        return None

    with DAG("d") as built:
        step()
        step()
        step()
        step.override(task_id="named")()
        step.override(task_id="named")()

    assert built.task_ids == ["step", "step__1", "step__2", "named", "named__1"]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [("dict[str, int]", True), ("Dict[str, int]", True), ("int", False), (None, False)],
)
def test_multiple_outputs_follow_the_return_annotation(
    annotation: str | None, expected: bool
) -> None:
    namespace: dict[str, Any] = {}
    returns = f" -> {annotation}" if annotation else ""
    exec(f"from typing import Dict\ndef f(){returns}:\n    return {{}}\n", namespace)

    with DAG("d") as built:
        task(namespace["f"])()

    assert built.get_task("f").multiple_outputs is expected


def test_explicit_multiple_outputs_wins_over_the_annotation() -> None:
    @task(multiple_outputs=False)
    def f() -> dict[str, int]:
        return {}

    with DAG("d") as built:
        f()

    assert built.get_task("f").multiple_outputs is False


def test_getitem_selects_a_key_of_multiple_outputs() -> None:
    @task
    def pair() -> dict[str, int]:
        return {"a": 1}

    @task
    def show(value: int) -> int:
        return value

    with DAG("d") as built:
        show(pair()["a"])

    op = built.get_task("show")
    assert op.op_args[0].key == "a"
    assert built.to_spec().tasks["show"].args["op_args"] == [
        {"__xcom__": {"task_id": "pair", "key": "a"}}
    ]


def test_wrong_call_arguments_fail_at_parse_time_with_the_task_id() -> None:
    @task
    def f(x: int) -> int:
        return x

    with DAG("d"), pytest.raises(TypeError, match=r"@task 'f'.*missing a required argument"):
        f()


def test_context_parameters_need_not_be_passed_and_are_injected() -> None:
    @task
    def f(x: int, ti: Any, ds: str, params: dict[str, Any]) -> tuple[Any, ...]:
        return x, ti, ds, params

    with DAG("d") as built:
        f(1)

    ti = FakeTI()
    op = built.get_task("f")
    context = {"ti": ti, "ds": "2024-01-01", "params": {"p": 1}, "run_id": "r"}
    assert op.execute(context) == (1, ti, "2024-01-01", {"p": 1})


def test_kwargs_receive_the_whole_context() -> None:
    @task
    def f(**context: Any) -> list[str]:
        return sorted(context)

    with DAG("d") as built:
        f()

    assert built.get_task("f").execute({"ti": None, "ds": "x"}) == ["ds", "ti"]


def test_positional_argument_named_like_a_context_key_is_refused() -> None:
    op = PythonOperator(task_id="p", python_callable=lambda ds: ds, op_args=["mine"])

    with pytest.raises(ValueError, match="'ds' in args is a part of kwargs"):
        op.execute({"ds": "2024-01-01"})


def test_templates_dict_is_passed_when_asked_for() -> None:
    op = PythonOperator(
        task_id="p",
        python_callable=lambda templates_dict: templates_dict["q"],
        templates_dict={"q": "select 1"},
    )

    assert op.execute({}) == "select 1"


def test_xcomarg_resolves_through_the_task_instance() -> None:
    @task
    def a() -> int:
        return 1

    with DAG("d"):
        ref = a()

    ti = FakeTI({("a", "return_value"): 41, ("a", "other"): 1})
    assert ref.resolve({"ti": ti}) == 41
    assert ref["other"].resolve({"ti": ti}) == 1
    assert list(ref.iter_references()) == [(ref.operator, "return_value")]


def test_xcomarg_is_not_iterable() -> None:
    @task
    def a() -> list[int]:
        return [1]

    with DAG("d"):
        ref = a()

    with pytest.raises(TypeError, match="not iterable"):
        list(ref)


def test_dag_decorator_builds_the_dag_with_function_arguments_as_params() -> None:
    @task
    def echo(value: Any) -> Any:
        return value

    @dag(schedule=None, tags=["x"])
    def my_pipeline(region: str = "eu", count: int = 3) -> None:
        """Moves data."""
        echo(region)

    built = my_pipeline()
    overridden = my_pipeline(count=5)

    assert built.dag_id == "my_pipeline" and built.tags == ["x"]
    assert built.doc_md == "Moves data."
    assert {k: p.value for k, p in built.params.items()} == {"region": "eu", "count": 3}
    assert overridden.params["count"].value == 5
    arg = built.get_task("echo").op_args[0]
    assert isinstance(arg, DagParam)
    assert arg.resolve({"params": {"region": "us"}}) == "us"


def test_dag_decorator_with_explicit_id() -> None:
    @dag("custom_id")
    def anything() -> None:
        return None

    assert anything().dag_id == "custom_id"


def test_dag_fileloc_is_the_defining_file() -> None:
    with DAG("d") as built:
        pass

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert built.fileloc == os.path.abspath(__file__)
    assert built.to_spec(bundle_root=repo).fileloc == "tests/sdk/test_taskflow.py"
    assert built.to_spec(bundle_root="/somewhere/else").fileloc == "test_taskflow.py"
