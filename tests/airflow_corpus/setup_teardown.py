"""Setup and teardown tasks: @setup/@teardown, as_setup/as_teardown on classic
operators, the with-block forms, and a teardown inside a task group."""

import pendulum
from airflow.decorators import dag, setup, task, teardown
from airflow.exceptions import AirflowSkipException
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.utils.task_group import TaskGroup


@setup
def create_bucket():
    return "bucket-1"


@teardown
def delete_bucket(name):
    # A teardown's failure does not fail the run (on_failure_fail_dagrun=False).
    raise RuntimeError(f"could not delete {name}")


@task
def load(name):
    return f"loaded into {name}"


@task
def check(message):
    assert message == "loaded into bucket-1", message


@setup
def provision():
    raise AirflowSkipException("nothing to provision today")


@teardown
def deprovision():
    print("deprovisioned")


@dag(
    dag_id="corpus_setup_teardown",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
)
def setup_teardown_pipeline():
    bucket = create_bucket()
    with delete_bucket(bucket):
        check(load(bucket))

    start_cluster = BashOperator(task_id="start_cluster", bash_command="echo up").as_setup()
    stop_cluster = BashOperator(task_id="stop_cluster", bash_command="echo down")
    query = BashOperator(task_id="query", bash_command="echo query")
    start_cluster >> query >> stop_cluster.as_teardown(setups=start_cluster)

    with provision() >> deprovision():
        EmptyOperator(task_id="use_provisioned")

    with TaskGroup("report") as report:
        opened = EmptyOperator(task_id="open").as_setup()
        closed = EmptyOperator(task_id="close")
        opened >> EmptyOperator(task_id="write") >> closed.as_teardown(setups=opened)
    report >> EmptyOperator(task_id="publish")


setup_teardown_pipeline()
