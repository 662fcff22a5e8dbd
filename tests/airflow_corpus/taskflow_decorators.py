"""Airflow 2 TaskFlow: airflow.decorators, task groups, XCom by return value."""

import pendulum
from airflow.decorators import dag, task, task_group


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def corpus_taskflow():
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task_group
    def transform(values):
        @task
        def double(xs: list[int]) -> list[int]:
            return [x * 2 for x in xs]

        @task
        def total(xs: list[int]) -> int:
            return sum(xs)

        return total(double(values))

    @task
    def who_am_i() -> str:
        # Imported where Airflow 2 examples import it: inside the task, at run time.
        from airflow.operators.python import get_current_context

        task_id = get_current_context()["ti"].task_id
        assert task_id == "who_am_i", task_id
        return task_id

    @task.branch
    def big_enough(value: int) -> str:
        assert value == 12, value  # (1 + 2 + 3) * 2, through XCom and the group
        return "celebrate" if value > 10 else "shrug"

    @task
    def celebrate() -> str:
        return "yes"

    @task
    def shrug() -> str:
        return "no"

    result = transform(extract())
    big_enough(result) >> [celebrate(), shrug()]
    who_am_i()


corpus_taskflow()
