"""Authoring setup and teardown tasks: the flags and edges each Airflow form makes."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.sdk import DAG, TaskGroup, setup, task, teardown
from operators.empty import EmptyOperator


def edges(dag: DAG) -> set[tuple[str, str]]:
    spec = dag.to_spec(validate=False)
    return {(up, t.task_id) for t in spec.tasks.values() for up in t.upstream}


def test_as_teardown_links_and_flags_its_setups() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create")
        query = EmptyOperator(task_id="query")
        delete = EmptyOperator(task_id="delete")
        assert create >> query >> delete.as_teardown(setups=create) is delete

    spec = dag.to_spec()
    assert spec.tasks["create"].is_setup and not spec.tasks["create"].is_teardown
    assert spec.tasks["delete"].is_teardown
    assert spec.tasks["delete"].trigger_rule is TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert not spec.tasks["delete"].on_failure_fail_dagrun
    assert edges(dag) == {("create", "query"), ("query", "delete"), ("create", "delete")}


def test_as_setup_and_on_failure_fail_dagrun() -> None:
    with DAG("d") as dag:
        a = EmptyOperator(task_id="a").as_setup()
        b = EmptyOperator(task_id="b").as_teardown(setups=[a], on_failure_fail_dagrun=True)
        assert a.is_setup and b.is_teardown

    spec = dag.to_spec()
    assert spec.tasks["b"].on_failure_fail_dagrun
    assert spec.run_state_leaves == frozenset({"b"})


def test_decorators_make_setup_and_teardown_tasks() -> None:
    @setup
    def make() -> str:
        return "x"

    @teardown(on_failure_fail_dagrun=True)
    def drop(name: str) -> None:
        pass

    @setup
    @task(retries=2)
    def with_options() -> None:
        pass

    with DAG("d") as dag:
        made = make()
        drop(made)
        with_options()

    spec = dag.to_spec()
    assert spec.tasks["make"].is_setup
    assert spec.tasks["drop"].is_teardown and spec.tasks["drop"].on_failure_fail_dagrun
    assert spec.tasks["drop"].trigger_rule is TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert spec.tasks["with_options"].is_setup and spec.tasks["with_options"].retries == 2
    assert drop.override(task_id="drop2").role["is_teardown"]


def test_xcomarg_as_setup_and_as_teardown() -> None:
    @task
    def one() -> int:
        return 1

    with DAG("d") as dag:
        s = one.override(task_id="s")().as_setup()
        t = one.override(task_id="t")().as_teardown(setups=s)
        assert s.is_setup and t.is_teardown

    assert ("s", "t") in edges(dag)


def test_with_teardown_block_puts_its_tasks_between_the_pair() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create")
        delete = EmptyOperator(task_id="delete")
        with delete.as_teardown(setups=create):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> [b, EmptyOperator(task_id="c")]
        after = EmptyOperator(task_id="after")

    assert edges(dag) == {
        ("create", "delete"),
        ("create", "a"),
        ("a", "b"),
        ("a", "c"),
        ("b", "delete"),
        ("c", "delete"),
    }
    assert not after.upstream_task_ids


def test_with_setup_rshift_teardown_and_nested_blocks() -> None:
    with DAG("d") as dag:
        s1, t1 = EmptyOperator(task_id="s1").as_setup(), EmptyOperator(task_id="t1")
        t1.as_teardown()
        s2, t2 = EmptyOperator(task_id="s2").as_setup(), EmptyOperator(task_id="t2")
        t2.as_teardown()
        with s1 >> t1:
            EmptyOperator(task_id="outer_work")
            with s2 >> t2:
                EmptyOperator(task_id="inner_work")

    assert edges(dag) == {
        ("s1", "t1"),
        ("s2", "t2"),
        ("s1", "outer_work"),
        ("outer_work", "t1"),
        ("s2", "inner_work"),
        ("inner_work", "t2"),
        ("s1", "s2"),
        ("t2", "t1"),
    }


def test_scope_add_task_takes_a_task_made_before_the_block() -> None:
    with DAG("d") as dag:
        early = EmptyOperator(task_id="early")
        s = EmptyOperator(task_id="s").as_setup()
        t = EmptyOperator(task_id="t").as_teardown(setups=s)
        with t as scope:
            scope.add_task(early)

    assert {("s", "early"), ("early", "t")} <= edges(dag)


def test_task_group_leaves_leave_teardowns_aside() -> None:
    with DAG("d") as dag:
        with TaskGroup("g") as group:
            s = EmptyOperator(task_id="s").as_setup()
            t = EmptyOperator(task_id="t")
            s >> EmptyOperator(task_id="w") >> t.as_teardown(setups=s)
        group >> EmptyOperator(task_id="after")

    assert dag.get_task("after").upstream_task_ids == {"g.w"}


def test_misuse_is_refused_with_a_clear_error() -> None:
    with DAG("d"):
        plain = EmptyOperator(task_id="plain")
        with pytest.raises(SlipstreamError, match="only setup and teardown tasks"), plain:
            pass
        both = EmptyOperator(task_id="both").as_setup()
        with pytest.raises(SlipstreamError, match="cannot be both a setup and a teardown"):
            both.as_teardown()
        lone = EmptyOperator(task_id="lone")
        with pytest.raises(SlipstreamError, match="its own setup"):
            lone.as_teardown(setups=lone)
        with pytest.raises(TypeError, match="takes tasks or XComArgs"):
            EmptyOperator(task_id="t").as_teardown(setups="create")

    with pytest.raises(SlipstreamError, match="cannot also be a teardown"):

        @teardown
        @setup
        def confused() -> None:
            pass


def test_validation_reports_a_rule_airflow_refuses_with_the_line() -> None:
    with DAG("d") as dag:
        s = EmptyOperator(task_id="s").as_setup()
        s >> EmptyOperator(task_id="w", trigger_rule="all_done")

    (problem,) = dag.problems()
    assert problem.task_id == "s"
    assert "task 'w' directly downstream of this setup has trigger rule 'all_done'" in (
        problem.message
    )
    assert problem.line is not None
