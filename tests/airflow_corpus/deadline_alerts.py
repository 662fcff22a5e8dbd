"""Airflow 3.1 deadline alerts: one already missed (a fixed time long past), one met."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from airflow.sdk.definitions.deadline import (
    AsyncCallback,
    DeadlineAlert,
    DeadlineReference,
    SyncCallback,
)


async def page_on_call(text, context, **kwargs):
    # Airflow passes the alert's kwargs and a context with the run and the deadline.
    assert text == "report is late"
    assert context["dag_run"]["dag_id"] == "corpus_deadlines"
    assert context["deadline"]["deadline_time"] == datetime.fromisoformat(
        "2020-01-01T06:00:00+00:00"
    )


def never_called(**kwargs):
    raise AssertionError("this deadline is an hour after the run was queued")


with DAG(
    dag_id="corpus_deadlines",
    schedule=None,
    deadline=[
        DeadlineAlert(
            reference=DeadlineReference.FIXED_DATETIME(datetime(2020, 1, 1, 8)),
            interval=timedelta(hours=-2),
            callback=AsyncCallback(page_on_call, kwargs={"text": "report is late"}),
        ),
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(hours=1),
            callback=SyncCallback(never_called),
        ),
    ],
):

    @task
    def build_report():
        return "ok"

    build_report() >> EmptyOperator(task_id="publish")
