from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.spec import MapSource
from chalicelib.sdk import DAG, MappedOperator, XComArg, task
from operators.empty import EmptyOperator
from operators.python import DecoratedPythonOperator, PythonOperator


def add(x: int, y: int) -> int:
    return x + y


def test_classic_partial_expand_keeps_sources_and_serializes_lengths() -> None:
    with DAG("d", default_args={"retries": 2}) as dag:
        mapped = PythonOperator.partial(
            task_id="m", python_callable=add, op_kwargs={"y": 1}
        ).expand(op_args=[[1], [2], [3]])

    assert isinstance(mapped, MappedOperator)
    assert mapped.expand_kind == "expand"
    assert mapped.expand_input == {"op_args": [[1], [2], [3]]}
    assert mapped.retries == 2
    spec = dag.to_spec().tasks["m"]
    assert spec.mapping is not None
    assert spec.mapping.kind == "expand"
    assert spec.mapping.sources == {"op_args": MapSource(literal_length=3)}
    assert spec.retries == 2 and spec.callable is not None and spec.callable.endswith(":add")


def test_unmap_builds_the_concrete_operator_without_adding_it() -> None:
    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        mapped = PythonOperator.partial(task_id="m", python_callable=add, retries=4).expand(
            op_args=[[1, 2], [3, 4]]
        )
        start >> mapped

    concrete = mapped.unmap({"op_args": [3, 4]})

    assert isinstance(concrete, PythonOperator)
    assert concrete.task_id == "m" and concrete.retries == 4
    assert concrete.dag is dag and dag.task_dict["m"] is mapped
    assert concrete.upstream_task_ids == {"start"}
    assert concrete.execute({}) == 7


def test_xcomarg_source_adds_the_edge_and_is_recorded_by_reference() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2]

    with DAG("d") as dag:
        nums = numbers()
        mapped = PythonOperator.partial(task_id="m", python_callable=add).expand(op_args=nums)

    assert mapped.upstream_task_ids == {"numbers"}
    assert dag.to_spec().tasks["m"].mapping.sources == {  # type: ignore[union-attr]
        "op_args": MapSource(xcom_task_id="numbers")
    }


def test_expand_refuses_unknown_and_scheduling_arguments() -> None:
    with DAG("d"):
        with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
            PythonOperator.partial(task_id="m", python_callable=add).expand(nope=[1])
        with pytest.raises(TypeError, match="cannot map 'retries'"):
            PythonOperator.partial(task_id="m2", python_callable=add).expand(retries=[1])
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            PythonOperator.partial(task_id="m3", python_callable=add, colour=1)
        with pytest.raises(TypeError, match="missing required argument 'task_id'"):
            PythonOperator.partial(python_callable=add)


def test_taskflow_expand_maps_function_arguments_into_op_kwargs() -> None:
    @task
    def double(x: int, factor: int) -> int:
        return x * factor

    with DAG("d") as dag:
        result = double.partial(factor=2).expand(x=[1, 2, 3])

    mapped = result.operator
    assert isinstance(result, XComArg) and isinstance(mapped, MappedOperator)
    assert mapped.operator_class is DecoratedPythonOperator
    concrete = mapped.unmap({"x": 5})
    assert concrete.op_kwargs == {"factor": 2, "x": 5}
    assert concrete.execute({}) == 10
    assert dag.to_spec().tasks["double"].args["expand_input"] == {"x": [1, 2, 3]}


def test_taskflow_expand_checks_names_against_the_function() -> None:
    @task
    def f(x: int) -> int:
        return x

    with DAG("d"), pytest.raises(TypeError, match="@task 'f'"):
        f.expand(y=[1])


def test_expand_kwargs_with_literal_dicts_and_with_an_xcomarg() -> None:
    @task
    def pairs() -> list[dict[str, Any]]:
        return [{"x": 1, "factor": 2}]

    @task
    def mul(x: int, factor: int) -> int:
        return x * factor

    with DAG("d") as dag:
        literal = mul.expand_kwargs([{"x": 1, "factor": 3}, {"x": 2, "factor": 4}])
        dynamic = mul.expand_kwargs(pairs())
        classic = PythonOperator.partial(task_id="c", python_callable=add).expand_kwargs(
            [{"op_args": [1, 2]}]
        )

    spec = dag.to_spec()
    assert literal.operator.expand_kind == "expand_kwargs"
    assert spec.tasks["mul"].mapping.sources == {"kwargs": MapSource(literal_length=2)}  # type: ignore[union-attr]
    assert spec.tasks["mul__1"].mapping.sources == {  # type: ignore[union-attr]
        "kwargs": MapSource(xcom_task_id="pairs")
    }
    assert dynamic.operator.upstream_task_ids == {"pairs"}
    assert literal.operator.unmap({"x": 2, "factor": 4}).execute({}) == 8
    assert classic.unmap({"op_args": [1, 2]}).execute({}) == 3


def test_mapped_task_joins_dependencies_like_an_operator() -> None:
    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        mapped = EmptyOperator.partial(task_id="m").expand_kwargs([{}, {}])
        end = EmptyOperator(task_id="end")
        start >> mapped >> end

    spec = dag.to_spec()
    assert spec.tasks["m"].upstream == ["start"] and spec.tasks["m"].downstream == ["end"]


def test_mapping_over_a_literal_that_is_not_a_list_is_a_problem_not_an_exception() -> None:
    with DAG("d") as dag:
        PythonOperator.partial(task_id="m", python_callable=add).expand(op_args=3)
        EmptyOperator.partial(task_id="k").expand_kwargs([1])

    messages = {(p.task_id, p.message) for p in dag.problems()}
    assert (
        "m",
        "mapped argument 'op_args' must be a list or dict or an upstream task's result",
    ) in messages
    assert ("k", "expand_kwargs() item 0 must be a dict of arguments, got int") in messages
