"""`with DAG(...)`, trigger rules, and Airflow's exceptions steering outcomes."""

import airflow
import pendulum
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.models.baseoperator import chain
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.trigger_rule import TriggerRule


def skip_me():
    raise AirflowSkipException("nothing to do today")


def fail_hard():
    raise AirflowFailException("bad input, retrying will not help")


def flaky():
    raise AirflowException("upstream API down")


with airflow.DAG(
    dag_id="corpus_trigger_rules",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
) as dag:
    begin = EmptyOperator(task_id="begin")
    skipped = PythonOperator(task_id="skipped", python_callable=skip_me)
    after_skip = EmptyOperator(task_id="after_skip")  # all_success: skipped too
    failed = PythonOperator(task_id="failed", python_callable=fail_hard, retries=3)
    retried = PythonOperator(task_id="retried", python_callable=flaky, retries=1)
    after_fail = EmptyOperator(task_id="after_fail")  # all_success: upstream_failed
    on_failure = EmptyOperator(task_id="on_failure", trigger_rule=TriggerRule.ONE_FAILED)
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
    tolerant = EmptyOperator(
        task_id="tolerant", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )

    chain(begin, [skipped, failed, retried])
    skipped >> after_skip
    failed >> after_fail
    [failed, retried] >> on_failure
    [skipped, failed, retried] >> cleanup
    [begin, skipped] >> tolerant
