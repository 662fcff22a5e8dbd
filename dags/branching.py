"""Weekday or weekend: a branch picks the path, the other one is skipped.

The join uses none_failed_min_one_success, Airflow's usual rule after a
branch, so it runs whichever path was taken.
"""

from __future__ import annotations

import pendulum

from chalicelib.sdk import DAG, TriggerRule, task
from operators.bash import BashOperator
from operators.empty import EmptyOperator

with DAG(
    "branching",
    description="Run the full report on weekdays and a light one at weekends.",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    tags=["example", "branching"],
) as dag:

    @task.branch
    def pick_report(logical_date=None) -> str:
        return "weekend_report" if logical_date.weekday() >= 5 else "weekday_report"

    weekday = BashOperator(task_id="weekday_report", bash_command="echo 'full report for {{ ds }}'")
    weekend = BashOperator(
        task_id="weekend_report", bash_command="echo 'light report for {{ ds }}'"
    )
    publish = EmptyOperator(task_id="publish", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

    pick_report() >> [weekday, weekend] >> publish
