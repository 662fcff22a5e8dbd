"""Mapped task groups in the SDK and in a real run (dag.test() through the worker runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.local.runner import run_dag_test
from chalicelib.sdk import DAG, get_current_context, task, task_group
from chalicelib.sdk.loader import load_dags
from chalicelib.sdk.serialize import dag_to_spec
from tests.sdk.dagfiles import line_of, write_dag


def _spec_of(dag: DAG):
    return dag_to_spec(dag)


def test_every_task_of_the_group_is_mapped_over_the_group_input() -> None:
    with DAG("shape") as dag:

        @task
        def names() -> list[str]:
            return ["a", "b"]

        @task_group
        def per_name(name: str):
            @task
            def first(name: str) -> str:
                return name

            @task
            def second(value: str) -> str:
                return value

            return second(first(name))

        @task
        def after(values: list[str]) -> None:
            pass

        after(per_name.expand(name=names()))

    spec = _spec_of(dag)
    first, second = spec.tasks["per_name.first"], spec.tasks["per_name.second"]
    assert first.mapping is not None and first.mapping.group == "per_name"
    assert second.mapping == first.mapping
    assert first.mapping.sources["name"].xcom_task_id == "names"
    assert first.upstream == ["names"]  # the input's task comes before the group
    assert second.upstream == ["per_name.first"]
    group = spec.task_groups["per_name"]
    assert group.mapping is not None and group.mapping.sources == first.mapping.sources
    assert spec.tasks["after"].upstream == ["per_name.second"]


def test_a_dag_without_mapped_groups_keeps_its_spec_bytes() -> None:
    with DAG("plain") as dag:

        @task
        def one(x: int) -> int:
            return x

        one.expand(x=[1, 2])

    text = _spec_of(dag).canonical_json()
    assert '"group"' not in text
    assert '"mapping":null' not in json.dumps(json.loads(text)["task_groups"])


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("inner.expand(y=[1])", "Slipstream does not run nested mapped task groups"),
        ("work.expand(y=[1])", "Slipstream does not map a task inside a mapped group"),
        ('work.override(trigger_rule="always")(x)', "has trigger rule 'always'"),
        ("work.override(depends_on_past=True)(x)", "does not check the past of a mapped group"),
        ("work(x).as_setup()", "is a setup or teardown"),
    ],
)
def test_nested_mapping_is_refused_with_file_and_line(
    tmp_path: Path, statement: str, expected: str
) -> None:
    path = write_dag(
        tmp_path,
        "nested.py",
        f"""
        from chalicelib.sdk import DAG, task, task_group

        @task
        def work(y):
            return y

        @task_group
        def inner(y):
            work(y)

        @task_group
        def outer(x):
            {statement}  # refused

        with DAG("nested") as dag:
            outer.expand(x=[1, 2])
        """,
    )
    result = load_dags([str(path)])
    problems = [p for p in result.problems if expected in p.message]
    assert problems, result.problems
    assert problems[0].file is not None and problems[0].file.endswith("nested.py")
    assert problems[0].line == line_of(path, "# refused")


@pytest.mark.parametrize("value", ['"abc"', "5", "{1, 2}"])
def test_mapping_over_a_non_list_is_refused_with_file_and_line(tmp_path: Path, value: str) -> None:
    path = write_dag(
        tmp_path,
        "scalar.py",
        f"""
        from chalicelib.sdk import DAG, task, task_group

        @task
        def work(x):
            return x

        @task_group
        def group(x):
            work(x)

        with DAG("scalar") as dag:
            group.expand(x={value})  # bad input
        """,
    )
    (problem,) = load_dags([str(path)]).problems
    assert "must be a list, tuple or dict or a task's output" in problem.message
    assert problem.line == line_of(path, "# bad input")


def test_unknown_or_doubled_argument_names_are_type_errors() -> None:
    @task_group
    def group(x, y):
        pass

    with DAG("names"):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            group.expand(z=[1])
        with pytest.raises(TypeError, match="both partial"):
            group.partial(x=1).expand(x=[2])
        with pytest.raises(TypeError, match="no arguments to expand"):
            group.expand()


def test_a_run_gives_each_instance_its_element_and_its_siblings_result() -> None:
    seen: dict[str, object] = {}
    with DAG("values") as dag:

        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task_group
        def per_number(n: int, factor: int):
            @task(map_index_template="{{ label }}")
            def scale(n: int, factor: int) -> int:
                get_current_context()["label"] = f"n={n}"
                return n * factor

            @task
            def check(scaled: int, n: int) -> int:
                ctx = get_current_context()
                assert scaled == n * 10, (scaled, n)
                assert ctx["ti"].map_index == n - 1
                assert ctx["expanded_ti_count"] == 3
                # an explicit pull of a sibling at another index still works
                other = ctx["ti"].xcom_pull(task_ids="per_number.scale", map_indexes=0)
                assert other == 10
                return scaled + 1

            return check(scale(n, factor), n)

        @task
        def total(values: list[int]) -> None:
            seen["values"] = list(values)

        total(per_number.partial(factor=10).expand(n=numbers()))

    result = run_dag_test(dag, show=False)

    assert result.succeeded, result.errors
    assert seen["values"] == [11, 21, 31]
    assert result.rendered_map_indexes == {f"per_number.scale[{i}]": f"n={i + 1}" for i in range(3)}


def test_expand_kwargs_gives_each_parameter_its_key() -> None:
    seen: list[tuple[str, int]] = []
    with DAG("kwargs") as dag:

        @task_group
        def load(table: str, rows: int):
            @task
            def record(table: str, rows: int) -> None:
                seen.append((table, rows))

            record(table, rows)

        @task
        def more() -> list[dict[str, object]]:
            return [{"table": "c", "rows": 3}]

        load.expand_kwargs([{"table": "a", "rows": 1}, {"table": "b", "rows": 2}])
        load.expand_kwargs(more())  # a second group, load__1, over a task's result

    result = run_dag_test(dag, show=False)

    assert result.succeeded, result.errors
    assert sorted(seen) == [("a", 1), ("b", 2), ("c", 3)]


def test_a_failing_instance_fails_only_its_own_index() -> None:
    with DAG("one_fails") as dag:

        @task_group
        def per_item(item: int):
            @task
            def check(item: int) -> int:
                if item == 2:
                    raise ValueError("bad item")
                return item

            @task
            def use(value: int) -> int:
                return value

            use(check(item))

        per_item.expand(item=[1, 2, 3])

    result = dag.test()  # Airflow's spelling of a local run

    assert result.task_states["per_item.check[1]"] == "failed"
    assert result.task_states["per_item.use[1]"] == "upstream_failed"
    assert result.task_states["per_item.use[0]"] == "success"
    assert result.task_states["per_item.use[2]"] == "success"
    assert result.state == "failed"
