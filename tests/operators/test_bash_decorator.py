"""``@task.bash``: the function returns the command, which runs as a BashOperator."""

from __future__ import annotations

from pathlib import Path

from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk import task
from chalicelib.sdk.dag import DAG
from operators.bash import DecoratedBashOperator
from tests.operators.support import returned, run_operator


def test_the_returned_command_runs_with_arguments_and_templates() -> None:
    @task.bash
    def greet(name: str, ds: str | None = None) -> str:
        return f"echo hello {name} on {ds} and {{{{ ds_nodash }}}}"

    result, store = run_operator(lambda: greet("ana").operator)
    assert result.state is TaskState.SUCCESS, result.error
    assert returned(store, "greet") == "hello ana on 2024-01-01 and 20240101"


def test_options_of_bash_operator_apply() -> None:
    @task.bash(env={"WHO": "env"}, skip_on_exit_code=7)
    def skip() -> str:
        return 'echo "$WHO"; exit 7'

    result, _ = run_operator(lambda: skip().operator)
    assert result.state is TaskState.SKIPPED


def test_an_empty_command_is_an_error() -> None:
    @task.bash
    def nothing() -> str:
        return "  "

    result, _ = run_operator(lambda: nothing().operator)
    assert result.state is TaskState.FAILED
    assert result.error == (
        "TypeError: The returned value from the TaskFlow callable must be a non-empty string."
    )


def test_a_returned_script_name_is_read_from_the_dag_folder(tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text("echo script for {{ ds }}\n")
    with DAG("script_dag", schedule=None) as dag:

        @task.bash
        def script() -> str:
            return "job.sh"

        script()
    dag.fileloc = str(tmp_path / "script_dag.py")
    result = run_dag_test(dag, show=False, logical_date="2024-02-03T00:00:00+00:00")
    assert result.succeeded, result.reason


def test_upstream_results_feed_the_command_in_dags_test() -> None:
    with DAG("bash_flow", schedule=None) as dag:

        @task
        def count() -> int:
            return 41

        @task.bash
        def report(n: int) -> str:
            return f"test {n} -eq 41 && echo $(({n} + 1))"

        report(count())
    result = run_dag_test(dag, show=False)
    assert result.succeeded, result.reason
    assert isinstance(dag.get_task("report"), DecoratedBashOperator)
