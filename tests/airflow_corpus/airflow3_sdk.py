"""Airflow 3: everything from airflow.sdk and the standard provider's operators."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, BaseOperator, Param, TaskGroup, chain, cross_downstream, task


class GreetOperator(BaseOperator):
    template_fields = ("who",)

    def __init__(self, who: str, **kwargs):
        super().__init__(**kwargs)
        self.who = who

    def execute(self, context):
        return f"hello {self.who}"


with DAG(
    dag_id="corpus_airflow3",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    params={"who": Param("world", type="string"), "times": Param(2, type="integer")},
):
    greet = GreetOperator(task_id="greet", who="{{ params.who }}")

    @task
    def repeat(greeting: str, params=None) -> str:
        from airflow.sdk import get_current_context

        assert get_current_context()["params"]["times"] == params["times"]
        return " ".join([greeting] * params["times"])

    @task
    def verify(text: str, params=None) -> None:
        expected = " ".join([f"hello {params['who']}"] * params["times"])
        assert text == expected, f"{text!r} != {expected!r}"

    with TaskGroup("checks") as checks:
        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")

    first = EmptyOperator(task_id="first")
    second = EmptyOperator(task_id="second")
    shout = BashOperator(task_id="shout", bash_command="echo {{ params.who | upper }}")

    repeated = repeat(greet.output)
    chain(greet, repeated, verify(repeated), checks, shout)
    cross_downstream([first, second], [left, right])
