from __future__ import annotations

from chalicelib.sdk import DAG, TaskGroup, task, task_group
from operators.empty import EmptyOperator


def test_group_ids_prefix_tasks_and_nest() -> None:
    with DAG("d") as dag:
        with TaskGroup("outer"):
            EmptyOperator(task_id="a")
            with TaskGroup("inner", tooltip="tip"):
                EmptyOperator(task_id="b")
        EmptyOperator(task_id="c")

    assert dag.task_ids == ["outer.a", "outer.inner.b", "c"]
    spec = dag.to_spec()
    assert spec.tasks["outer.inner.b"].group_id == "outer.inner"
    assert spec.tasks["c"].group_id is None
    assert spec.task_groups["outer.inner"].parent == "outer"
    assert spec.task_groups["outer.inner"].tooltip == "tip"
    assert spec.task_groups["outer"].parent is None


def test_prefix_group_id_false_keeps_plain_ids() -> None:
    with DAG("d") as dag, TaskGroup("g", prefix_group_id=False):
        EmptyOperator(task_id="a")

    assert dag.task_ids == ["a"]
    assert dag.to_spec().tasks["a"].group_id == "g"


def test_task_into_group_and_group_into_task() -> None:
    with DAG("d"):
        first = EmptyOperator(task_id="first")
        with TaskGroup("g") as group:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
        last = EmptyOperator(task_id="last")
        first >> group
        group >> last

    assert a.upstream_task_ids == {"first"} and b.upstream_task_ids == {"first"}
    assert last.upstream_task_ids == {"g.a", "g.b"}


def test_group_to_group_links_leaves_to_roots() -> None:
    with DAG("d"):
        with TaskGroup("one") as one:
            x = EmptyOperator(task_id="x")
            y = EmptyOperator(task_id="y")
            x >> y
        with TaskGroup("two") as two:
            z = EmptyOperator(task_id="z")
        one >> two

    assert z.upstream_task_ids == {"one.y"}


def test_task_group_decorator_prefixes_deduplicates_and_returns_the_last_result() -> None:
    @task
    def step(value: int) -> int:
        return value

    @task_group
    def section(value: int):  # type: ignore[no-untyped-def]
        return step(step(value))

    with DAG("d") as dag:
        first = section(1)
        section(2)

    assert dag.task_ids == [
        "section.step",
        "section.step__1",
        "section__1.step",
        "section__1.step__1",
    ]
    assert first.operator.task_id == "section.step__1"


def test_task_group_decorator_without_return_value_returns_the_group() -> None:
    @task_group(group_id="custom")
    def section() -> None:
        EmptyOperator(task_id="a")

    with DAG("d") as dag:
        group = section()
        end = EmptyOperator(task_id="end")
        group >> end

    assert isinstance(group, TaskGroup) and group.group_id == "custom"
    assert dag.get_task("end").upstream_task_ids == {"custom.a"}


def test_group_default_args_apply_inside_only() -> None:
    with DAG("d", default_args={"retries": 1}):
        with TaskGroup("g", default_args={"retries": 5}):
            inside = EmptyOperator(task_id="a")
        outside = EmptyOperator(task_id="b")

    assert inside.retries == 5 and outside.retries == 1


def test_duplicate_group_id_is_a_problem() -> None:
    with DAG("d") as dag:
        with TaskGroup("g"):
            EmptyOperator(task_id="a")
        with TaskGroup("g"):  # second
            EmptyOperator(task_id="b")

    messages = [p.message for p in dag.problems()]
    assert "duplicate task group id 'g'" in messages
