"""Branching and short-circuiting with the classic Python operators."""

import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, ShortCircuitOperator


def choose(**context):
    return "weekday_path" if context["params"]["weekday"] else "weekend_path"


with DAG(
    "corpus_branching",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule=None,
    params={"weekday": True},
) as dag:
    pick = BranchPythonOperator(task_id="pick", python_callable=choose)
    weekday_path = EmptyOperator(task_id="weekday_path")
    weekend_path = EmptyOperator(task_id="weekend_path")
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
    never = EmptyOperator(task_id="never")

    pick >> [weekday_path, weekend_path] >> join >> gate >> never
