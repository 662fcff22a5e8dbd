"""DAG and task arguments Airflow files pass: accepted, recorded, or refused by name."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core.cron_timetables import CronTriggerTimetable
from chalicelib.core.timetable_base import NullTimetable
from chalicelib.sdk import DAG, Param, task
from chalicelib.sdk.scheduler_settings import CRON_DATA_INTERVALS
from operators.empty import EmptyOperator

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRON_DATA_INTERVALS, raising=False)


def messages(dag: DAG) -> list[str]:
    return [p.message for p in dag.problems()]


def test_schedule_interval_is_airflow_2s_name_for_schedule() -> None:
    with DAG("old_style", schedule_interval="@daily", start_date=START) as dag:
        EmptyOperator(task_id="work")
    assert dag.timetable == CronTriggerTimetable("0 0 * * *", timezone="UTC")
    assert messages(dag) == []


def test_no_schedule_at_all_means_none() -> None:
    with DAG("manual") as dag:
        EmptyOperator(task_id="work")
    assert isinstance(dag.timetable, NullTimetable)


def test_schedule_and_schedule_interval_together_are_refused() -> None:
    with DAG("both", schedule="@daily", schedule_interval="@hourly", start_date=START) as dag:
        EmptyOperator(task_id="work")
    assert messages(dag) == [
        "pass either schedule= or schedule_interval= (its Airflow 2 name), not both: "
        "got schedule='@daily' and schedule_interval='@hourly'"
    ]


def test_schedule_interval_none_beside_a_schedule_is_still_both() -> None:
    with DAG("both", schedule=None, schedule_interval=None) as dag:
        EmptyOperator(task_id="work")
    assert len(messages(dag)) == 1


def test_dag_options_are_kept_and_recorded() -> None:
    def shout(text: str) -> str:
        return text.upper()

    with DAG(
        "options",
        is_paused_upon_creation=False,
        user_defined_macros={"team": "data"},
        user_defined_filters={"shout": shout},
        template_searchpath="sql",
        render_template_as_native_obj=True,
    ) as dag:
        EmptyOperator(task_id="work", queue="gpu")
    spec = dag.to_spec()
    assert spec.is_paused_upon_creation is False and spec.render_template_as_native_obj is True
    assert spec.tasks["work"].queue == "gpu"
    assert dag.user_defined_macros == {"team": "data"}
    assert dag.user_defined_filters == {"shout": shout}
    assert dag.template_searchpath == ["sql"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"is_paused_upon_creation": "no"}, "is_paused_upon_creation must be True or False"),
        ({"user_defined_macros": ["x"]}, "user_defined_macros must be a dict of names"),
        ({"user_defined_filters": {"f": 1}}, "user_defined_filters must map names to callables"),
        ({"template_searchpath": 3}, "template_searchpath must be a folder or a list"),
        ({"render_template_as_native_obj": "yes"}, "render_template_as_native_obj must be True"),
    ],
)
def test_a_bad_option_is_one_problem_naming_it(options: dict[str, object], message: str) -> None:
    with DAG("bad", **options) as dag:  # type: ignore[arg-type]
        EmptyOperator(task_id="work")
    found = messages(dag)
    assert len(found) == 1 and found[0].startswith(message), found


def test_airflow_2_sla_arguments_are_refused_pointing_at_deadlines() -> None:
    with DAG(
        "slas",
        default_args={"sla": dt.timedelta(hours=1)},
        sla_miss_callback=lambda *args: None,
    ) as dag:
        EmptyOperator(task_id="a")
        EmptyOperator(task_id="b")
        EmptyOperator(task_id="c", sla=dt.timedelta(minutes=5))
    found = dag.problems()
    assert [(p.task_id, p.message.split(" is ")[0]) for p in found] == [
        (None, "sla_miss_callback"),
        (None, "default_args['sla']"),
        ("c", "sla"),
    ]
    assert all("use a deadline alert instead" in p.message for p in found)


def test_a_queue_that_is_not_a_name_is_refused() -> None:
    with DAG("queues") as dag:
        EmptyOperator(task_id="work", queue=3)  # type: ignore[arg-type]
    assert messages(dag) == ["queue must be a queue name (str), got 3"]


def test_queue_and_callbacks_come_from_default_args_too() -> None:
    def noted(context: object) -> None:
        return None

    with DAG(
        "defaults",
        default_args={"queue": "etl", "on_execute_callback": noted, "on_skipped_callback": noted},
    ) as dag:

        @task
        def work() -> None:
            return None

        work()
    spec = dag.to_spec()
    assert spec.tasks["work"].queue == "etl"
    assert spec.tasks["work"].on_execute_callback is not None
    assert spec.tasks["work"].on_skipped_callback == spec.tasks["work"].on_execute_callback


def test_a_param_default_that_breaks_its_format_is_a_problem() -> None:
    with DAG("params", params={"day": Param("2024-02-30", type="string", format="date")}) as dag:
        EmptyOperator(task_id="work")
    found = messages(dag)
    assert len(found) == 1 and "'2024-02-30' is not a 'date'" in found[0], found


def test_wait_for_downstream_implies_depends_on_past_as_in_airflow() -> None:
    with DAG("past", default_args={"wait_for_downstream": False}) as dag:
        a = EmptyOperator(task_id="a", wait_for_downstream=False)
        b = EmptyOperator(task_id="b", wait_for_downstream=True)
    assert messages(dag) == []
    assert not a.depends_on_past and b.depends_on_past and b.wait_for_downstream
    spec = dag.to_spec().tasks["b"]
    assert spec.depends_on_past and spec.wait_for_downstream
