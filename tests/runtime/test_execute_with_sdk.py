"""execute_try with the real SDK: PythonOperator, @task, mapping, branching, params."""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.core.states import TaskState
from chalicelib.runtime import InMemoryXComStore, TryRequest, TryResult, execute_try
from chalicelib.sdk import DAG, Param, get_current_context, task
from operators.python import BranchPythonOperator, PythonOperator
from tests.runtime.runtime_doubles import Clock, scheduled_run

UTC = dt.timezone.utc


class Runner:
    """Runs tries of one DAG against one store, as a scheduler would in order."""

    def __init__(self, dag: DAG, conf: dict[str, Any] | None = None):
        self.dag = dag
        self.spec = dag.to_spec()
        self.run = scheduled_run(dag.dag_id, dt.datetime(2024, 1, 1, tzinfo=UTC), conf=conf)
        self.store = InMemoryXComStore()

    def __call__(self, task_id: str, map_index: int = -1, try_number: int = 1) -> TryResult:
        request = TryRequest(
            dag=self.dag,
            spec=self.spec,
            run=self.run,
            task_id=task_id,
            map_index=map_index,
            try_number=try_number,
        )
        return execute_try(request, self.store, clock=Clock())

    def value(self, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        found, value = self.store.pull(task_id, map_index, key)
        assert found, f"{task_id}[{map_index}] pushed no {key!r}"
        return value


def test_classic_operators_pass_results_and_render_op_kwargs() -> None:
    def extract() -> list[int]:
        return [1, 2, 3]

    def load(rows: list[int], day: str, **context: Any) -> str:
        return f"{day}:{sum(rows)}:{context['ti'].try_number}"

    with DAG("classic") as dag:
        first = PythonOperator(task_id="extract", python_callable=extract)
        PythonOperator(
            task_id="load",
            python_callable=load,
            op_kwargs={"rows": first.output, "day": "{{ ds }}"},
        )
    run = Runner(dag)
    assert run("extract").result_length == 3
    assert run("load", try_number=2).state is TaskState.SUCCESS
    assert run.value("load") == "2024-01-01:6:2"


def test_taskflow_with_multiple_outputs_and_current_context() -> None:
    with DAG("flow", params={"factor": Param(2, type="integer")}) as dag:

        @task
        def numbers() -> dict[str, int]:
            return {"a": 1, "b": 2}

        @task
        def combine(a: int, b: int) -> int:
            context = get_current_context()
            return (a + b) * context["params"]["factor"]

        out = numbers()
        combine(out["a"], out["b"])
    run = Runner(dag, conf={"factor": 10})
    assert run("numbers").state is TaskState.SUCCESS
    assert (run.value("numbers", key="a"), run.value("numbers", key="b")) == (1, 2)
    assert run("combine").state is TaskState.SUCCESS
    assert run.value("combine") == 30


def test_mapped_taskflow_over_a_result_made_at_run_time() -> None:
    with DAG("fanout") as dag:

        @task
        def files() -> list[str]:
            return ["a.csv", "b.csv", "c.csv"]

        @task
        def size(name: str, suffix: str) -> str:
            return f"{name}{suffix}"

        @task
        def total(sizes: list[str]) -> str:
            return ",".join(sizes)

        total(size.partial(suffix="!").expand(name=files()))
    run = Runner(dag)
    assert run("files").result_length == 3
    for index in range(3):
        assert run("size", map_index=index).state is TaskState.SUCCESS
    assert run("total").state is TaskState.SUCCESS
    assert run.value("total") == "a.csv!,b.csv!,c.csv!"


def test_mapped_classic_operator_cross_product() -> None:
    def show(x: int, y: str) -> str:
        return f"{x}{y}"

    with DAG("cross") as dag:
        PythonOperator.partial(task_id="show", python_callable=show).expand(
            op_kwargs=[{"x": 1, "y": "a"}, {"x": 2, "y": "{{ ds_nodash }}"}]
        )
    run = Runner(dag)
    assert [run("show", map_index=i).state for i in range(2)] == [TaskState.SUCCESS] * 2
    assert run.store.pull_mapped("show", "return_value") == ["1a", "220240101"]


def test_branching_records_the_tasks_to_skip() -> None:
    with DAG("branchy") as dag:
        choose = BranchPythonOperator(task_id="choose", python_callable=lambda: "left")
        left = PythonOperator(task_id="left", python_callable=lambda: None)
        right = PythonOperator(task_id="right", python_callable=lambda: None)
        choose >> [left, right]
    run = Runner(dag)
    result = run("choose")
    assert result.state is TaskState.SUCCESS
    assert result.skip_downstream == ("right",)


def test_mapping_over_one_key_of_a_multiple_outputs_result() -> None:
    with DAG("keyed") as dag:

        @task(multiple_outputs=True)
        def listing() -> dict[str, Any]:
            return {"files": ["x", "y", "z"], "count": 3}

        @task
        def touch(name: str) -> str:
            return name.upper()

        touch.expand(name=listing()["files"])
    run = Runner(dag)
    result = run("listing")
    assert result.state is TaskState.SUCCESS
    assert result.result_length == 3  # the mapped key's length, not the dict's
    assert [run("touch", map_index=i).state for i in range(3)] == [TaskState.SUCCESS] * 3
    assert run.store.pull_mapped("touch", "return_value") == ["X", "Y", "Z"]


def test_a_mapped_key_that_is_not_a_list_fails_the_upstream() -> None:
    with DAG("badkey") as dag:

        @task(multiple_outputs=True)
        def listing() -> dict[str, Any]:
            return {"files": "not a list"}

        @task
        def touch(name: str) -> str:
            return name

        touch.expand(name=listing()["files"])
    result = Runner(dag)("listing")
    assert result.state is TaskState.FAILED
    assert result.error == "UnmappableXComTypePushed: unmappable return type 'str'"
