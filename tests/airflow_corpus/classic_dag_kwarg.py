"""Airflow 2 classic style: a DAG object, default_args, operators given dag=dag."""

from datetime import timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.operators.bash import BashOperator
from airflow.operators.dummy import DummyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.dates import days_ago

default_args = {
    "owner": "data-eng",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}

dag = DAG(
    "corpus_classic",
    default_args=default_args,
    description="classic operators with dag=dag",
    schedule=None,
    start_date=days_ago(2),
    catchup=False,
    tags=["corpus"],
)


def extract(**context):
    return {"rows": 3, "run": context["run_id"]}


def load(ti, **_):
    payload = ti.xcom_pull(task_ids="extract")
    target = Variable.get("corpus_target", default_var="warehouse")
    return f"{payload['rows']} rows to {target}"


start = DummyOperator(task_id="start", dag=dag)
extract_task = PythonOperator(task_id="extract", python_callable=extract, dag=dag)
load_task = PythonOperator(task_id="load", python_callable=load, dag=dag)
report = BashOperator(
    task_id="report",
    bash_command='test "{{ ti.xcom_pull(task_ids="load") }}" = "3 rows to {{ params.target }}"',
    params={"target": "warehouse"},
    dag=dag,
)

start >> extract_task
extract_task.set_downstream(load_task)
report.set_upstream(load_task)
