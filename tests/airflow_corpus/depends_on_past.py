"""Airflow 2 style with depends_on_past in default_args and wait_for_downstream on one task.

Under `dags test` (one run, no earlier runs) every task runs: the past of a
first run is met, as in Airflow's dag.test() on an empty metadata database.
"""

import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator

default_args = {
    "owner": "data-eng",
    "depends_on_past": True,
    "ignore_first_depends_on_past": False,
}

with DAG(
    dag_id="corpus_depends_on_past",
    default_args=default_args,
    schedule="@daily",
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=3,
) as dag:
    extract = BashOperator(task_id="extract", bash_command="echo extract {{ ds }}")
    transform = BashOperator(
        task_id="transform",
        bash_command="echo transform {{ ds }}",
        wait_for_downstream=True,
    )
    load = EmptyOperator(task_id="load", depends_on_past=False)
    extract >> transform >> load
