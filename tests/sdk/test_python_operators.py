from __future__ import annotations

from typing import Any

import pytest

from chalicelib.sdk import DAG, TaskGroup, task
from operators.empty import EmptyOperator
from operators.python import BranchError, BranchPythonOperator, ShortCircuitOperator


class RecordingTI:
    def __init__(self) -> None:
        self.skipped: list[list[str]] = []

    def skip_downstream(self, task_ids: list[str]) -> None:
        self.skipped.append(list(task_ids))


def branching_dag(choice: Any) -> tuple[DAG, BranchPythonOperator]:
    with DAG("d") as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: choice)
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        with TaskGroup("g") as group:
            EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        branch >> [a, b, group]
        a >> join
        branch >> join
    return dag, branch


def test_branch_skips_the_direct_downstream_tasks_not_followed() -> None:
    _, branch = branching_dag("a")
    ti = RecordingTI()

    assert branch.execute({"ti": ti}) == ["a"]
    # join is downstream of the followed task a, so it is not skipped (Airflow's rule).
    assert ti.skipped == [["b", "g.x"]]


def test_branch_to_a_group_follows_its_roots() -> None:
    _, branch = branching_dag(["g", "b"])
    ti = RecordingTI()

    assert branch.execute({"ti": ti}) == ["b", "g.x"]
    assert ti.skipped == [["a", "join"]]


def test_branch_returning_none_skips_every_direct_downstream_task() -> None:
    _, branch = branching_dag(None)
    ti = RecordingTI()

    assert branch.execute({"ti": ti}) == []
    assert ti.skipped == [["a", "b", "g.x", "join"]]


def test_branch_to_a_task_that_is_not_directly_downstream_fails_clearly() -> None:
    _, branch = branching_dag("g.y")

    with pytest.raises(BranchError, match=r"chose 'g\.y', which is not directly downstream"):
        branch.execute({"ti": RecordingTI()})


def test_branch_with_a_bad_return_type_fails_clearly() -> None:
    _, branch = branching_dag(3)

    with pytest.raises(BranchError, match="must return a task id"):
        branch.execute({"ti": RecordingTI()})


def test_task_branch_decorator_is_a_branch_and_gets_context() -> None:
    @task.branch
    def choose(params: dict[str, Any]) -> str:
        return params["go"]

    with DAG("d") as dag:
        chooser = choose()
        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")
        chooser >> [left, right]

    ti = RecordingTI()
    assert dag.get_task("choose").execute({"ti": ti, "params": {"go": "right"}}) == ["right"]
    assert ti.skipped == [["left"]]
    assert dag.to_spec().tasks["choose"].flow == "branch"


def short_circuit_dag(result: Any, ignore: bool) -> ShortCircuitOperator:
    with DAG("d"):
        check = ShortCircuitOperator(
            task_id="check", python_callable=lambda: result, ignore_downstream_trigger_rules=ignore
        )
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
        check >> [a, b]
        a >> c
    return check


@pytest.mark.parametrize(
    ("result", "ignore", "skipped"),
    [
        (False, True, [["a", "b", "c"]]),
        ([], False, [["a", "b"]]),
        (True, True, []),
        ("yes", False, []),
    ],
)
def test_short_circuit(result: Any, ignore: bool, skipped: list[list[str]]) -> None:
    check = short_circuit_dag(result, ignore)
    ti = RecordingTI()

    assert check.execute({"ti": ti}) == result
    assert ti.skipped == skipped


def test_task_short_circuit_decorator_serializes_its_flow() -> None:
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def gate() -> bool:
        return False

    with DAG("d") as dag:
        gate() >> EmptyOperator(task_id="after")

    op = dag.get_task("gate")
    assert op.ignore_downstream_trigger_rules is False
    assert dag.to_spec().tasks["gate"].flow == "short_circuit"


def test_empty_operator_returns_none() -> None:
    assert EmptyOperator(task_id="e").execute({}) is None
