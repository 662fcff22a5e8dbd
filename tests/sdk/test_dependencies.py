from __future__ import annotations

import pytest

from chalicelib.sdk import DAG, TaskGroup, chain, cross_downstream, task
from operators.empty import EmptyOperator


def edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_shift_operators_set_edges_and_return_the_right_operand() -> None:
    with DAG("d") as dag:
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        result = a >> b
        c << b

    assert result is b
    assert edges(dag) == {("a", "b"), ("b", "c")}
    assert b.upstream_task_ids == {"a"} and b.downstream_task_ids == {"c"}


def test_lists_on_either_side_fan_out_and_in() -> None:
    with DAG("d") as dag:
        a, b, c, d = (EmptyOperator(task_id=x) for x in "abcd")
        a >> [b, c] >> d

    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}


def test_set_upstream_and_downstream_accept_lists() -> None:
    with DAG("d") as dag:
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        a.set_downstream([b, c])
        c.set_upstream(b)

    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "c")}


def test_xcomarg_on_either_side_links_its_operator() -> None:
    @task
    def make() -> int:
        return 1

    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        end = EmptyOperator(task_id="end")
        made = make()
        start >> made >> end

    assert edges(dag) == {("start", "make"), ("make", "end")}


def test_chain_links_pairwise_lists_and_fans() -> None:
    with DAG("d") as dag:
        a, b1, b2, c1, c2, d = (
            EmptyOperator(task_id=x) for x in ["a", "b1", "b2", "c1", "c2", "d"]
        )
        chain(a, [b1, b2], [c1, c2], d)

    assert edges(dag) == {
        ("a", "b1"),
        ("a", "b2"),
        ("b1", "c1"),
        ("b2", "c2"),
        ("c1", "d"),
        ("c2", "d"),
    }


def test_chain_refuses_lists_of_different_lengths() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        with pytest.raises(ValueError, match="same length; got 2 and 1"):
            chain([a, b], [c])


def test_cross_downstream_links_every_pair() -> None:
    with DAG("d") as dag:
        a, b, c, d = (EmptyOperator(task_id=x) for x in "abcd")
        cross_downstream([a, b], [c, d])

    assert edges(dag) == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")}


def test_dag_argument_style_without_a_context_manager() -> None:
    dag = DAG("old_style")
    a = EmptyOperator(task_id="a", dag=dag)
    b = EmptyOperator(task_id="b", dag=dag)
    a.set_downstream(b)

    assert dag.task_ids == ["a", "b"]
    assert b.dag is dag and dag.get_task("a") is a


def test_a_task_without_a_dag_joins_its_partners_dag() -> None:
    dag = DAG("d")
    a = EmptyOperator(task_id="a", dag=dag)
    loose = EmptyOperator(task_id="loose")
    a >> loose

    assert loose.dag is dag and "loose" in dag.task_dict


def test_relationship_with_something_else_is_a_type_error() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(TypeError, match="relationships can only be set"):
            a >> "b"


def test_group_on_either_side_uses_its_roots_and_leaves() -> None:
    with DAG("d") as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("g") as group:
            x = EmptyOperator(task_id="x")
            y1 = EmptyOperator(task_id="y1")
            y2 = EmptyOperator(task_id="y2")
            x >> [y1, y2]
        end = EmptyOperator(task_id="end")
        start >> group >> end

    assert edges(dag) == {
        ("start", "g.x"),
        ("g.x", "g.y1"),
        ("g.x", "g.y2"),
        ("g.y1", "end"),
        ("g.y2", "end"),
    }
    assert [t.task_id for t in dag.roots] == ["start"]
    assert [t.task_id for t in dag.leaves] == ["end"]
