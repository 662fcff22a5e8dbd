"""Variables and connections as Airflow DAGs read them: Variable, BaseHook, templates."""

import pendulum
from airflow.hooks.base import BaseHook
from airflow.models import DAG, Variable
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def use_secrets():
    conn = BaseHook.get_connection("corpus_db")
    settings = Variable.get("corpus_settings", deserialize_json=True)
    limit = Variable.get("corpus_limit")
    return {"host": conn.host, "port": conn.port, "table": settings["table"], "limit": limit}


with DAG(
    "corpus_secrets", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None
) as dag:
    read = PythonOperator(task_id="read", python_callable=use_secrets)
    templated = BashOperator(
        task_id="templated",
        bash_command=(
            'test "{{ var.value.corpus_limit }}" = 10 && '
            'test "{{ conn.corpus_db.host }}" = db.example.com'
        ),
    )
    read >> templated
