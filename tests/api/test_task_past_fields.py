"""GET /api/v2/dags/{dag_id}/tasks reports depends_on_past and wait_for_downstream as set."""

from __future__ import annotations

from chalicelib.api.routes.dags import task_response
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator


def test_the_task_fields_report_the_real_values() -> None:
    with DAG("past_fields", schedule=None) as dag:
        EmptyOperator(task_id="plain")
        EmptyOperator(task_id="past", depends_on_past=True)
        EmptyOperator(task_id="downstream", wait_for_downstream=True)
    spec = dag.to_spec()
    shown = {
        tid: task_response(spec, task).model_dump(
            include={"depends_on_past", "wait_for_downstream"}
        )
        for tid, task in spec.tasks.items()
    }
    assert shown == {
        "plain": {"depends_on_past": False, "wait_for_downstream": False},
        "past": {"depends_on_past": True, "wait_for_downstream": False},
        "downstream": {"depends_on_past": True, "wait_for_downstream": True},
    }
