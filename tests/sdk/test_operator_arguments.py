from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.sdk import DAG, BaseOperator, ExecutorConfig, Param, TaskGroup
from operators.empty import EmptyOperator
from operators.python import PythonOperator


def test_explicit_argument_beats_every_default_args_layer() -> None:
    dag_defaults = {"retries": 1, "pool": "dag_pool", "priority_weight": 5, "owner": "dag"}
    with DAG("d", default_args=dag_defaults):
        outer = TaskGroup("outer", default_args={"retries": 2, "pool": "outer_pool"})
        with outer, TaskGroup("inner", default_args={"retries": 3}):
            from_inner = EmptyOperator(task_id="a")
            own = EmptyOperator(task_id="b", default_args={"retries": 4})
            explicit = EmptyOperator(task_id="c", retries=9, default_args={"retries": 4})
        plain = EmptyOperator(task_id="d")

    assert from_inner.retries == 3 and from_inner.pool == "outer_pool"
    assert from_inner.priority_weight == 5 and from_inner.owner == "dag"
    assert own.retries == 4
    assert explicit.retries == 9
    assert plain.retries == 1 and plain.pool == "dag_pool"


def test_default_args_fill_operator_specific_arguments_too() -> None:
    with DAG("d", default_args={"op_kwargs": {"x": 1}, "not_an_argument": True}):
        op = PythonOperator(task_id="p", python_callable=lambda x: x)

    assert op.op_kwargs == {"x": 1}


def test_unknown_argument_names_the_operator_task_and_argument() -> None:
    with DAG("d"), pytest.raises(TypeError, match=r"EmptyOperator \(task_id: 'a'\).*colour"):
        EmptyOperator(task_id="a", colour="red")


def test_missing_required_argument_names_the_task() -> None:
    with DAG("d"), pytest.raises(TypeError, match=r"'p'.*python_callable"):
        PythonOperator(task_id="p")  # type: ignore[call-arg]


def test_task_id_may_be_positional() -> None:
    with DAG("d") as dag:
        EmptyOperator("a")

    assert dag.task_ids == ["a"]


def test_durations_accept_seconds_and_timedeltas() -> None:
    with DAG("d"):
        op = EmptyOperator(
            task_id="a",
            retry_delay=30,
            execution_timeout=dt.timedelta(minutes=2),
            max_retry_delay=90.5,
        )

    assert op.retry_delay == dt.timedelta(seconds=30)
    assert op.execution_timeout == dt.timedelta(minutes=2)
    assert op.max_retry_delay == dt.timedelta(seconds=90.5)


def test_trigger_rule_strings_become_the_enum() -> None:
    with DAG("d"):
        op = EmptyOperator(task_id="a", trigger_rule="none_failed_min_one_success")

    assert op.trigger_rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS


def test_executor_forms() -> None:
    ecs = ExecutorConfig("ecs", image="repo/img:1", cpu=1024, memory=2048, task_role_arn="arn:x")
    with DAG("d") as dag:
        EmptyOperator(task_id="default")
        EmptyOperator(task_id="local", executor="local")
        EmptyOperator(task_id="ecs", executor=ecs)
        EmptyOperator(task_id="dict", executor={"kind": "ecs", "image": "i"})

    spec = dag.to_spec()
    assert spec.tasks["default"].executor.kind == "lambda"
    assert spec.tasks["local"].executor.kind == "local"
    assert spec.tasks["ecs"].executor.model_dump() == {
        "kind": "ecs",
        "image": "repo/img:1",
        "cpu": 1024,
        "memory": 2048,
        "task_role_arn": "arn:x",
    }
    assert spec.tasks["dict"].executor.image == "i"


def test_depends_on_past_and_its_options_reach_the_spec() -> None:
    with DAG("d", default_args={"depends_on_past": False, "email": ["a@x"], "owner": "me"}) as dag:
        fine = EmptyOperator(task_id="fine")
        past = EmptyOperator(task_id="past", depends_on_past=True)
        first = EmptyOperator(
            task_id="first", depends_on_past=True, ignore_first_depends_on_past=True
        )

    assert fine.email == ["a@x"] and fine.owner == "me"
    assert dag.problems() == []
    assert past.depends_on_past and not past.wait_for_downstream
    tasks = dag.to_spec().tasks
    assert not tasks["fine"].depends_on_past
    assert tasks["past"].depends_on_past and not tasks["past"].ignore_first_depends_on_past
    assert tasks["first"].ignore_first_depends_on_past and first.ignore_first_depends_on_past


def test_a_spec_without_depends_on_past_keeps_its_hash_fields() -> None:
    with DAG("d") as dag:
        EmptyOperator(task_id="fine")
    assert "depends_on_past" not in dag.to_spec().canonical_json()


def test_pendulum_start_date_sets_the_dag_timezone() -> None:
    start = pendulum.datetime(2024, 1, 1, tz="America/New_York")
    with DAG("d", start_date=start) as dag:
        EmptyOperator(task_id="a")

    spec = dag.to_spec()
    assert dag.timezone == "America/New_York"
    assert spec.timezone == "America/New_York"
    assert spec.start_date == dt.datetime(2024, 1, 1, 5, tzinfo=dt.UTC)


def test_naive_dates_are_wall_clock_in_the_dag_timezone() -> None:
    dag = DAG("d", start_date=dt.datetime(2024, 7, 1), timezone="Europe/Paris")

    assert dag.to_spec().start_date == dt.datetime(2024, 6, 30, 22, tzinfo=dt.UTC)


def test_explicit_timezone_wins_over_the_start_dates_zone() -> None:
    start = pendulum.datetime(2024, 1, 1, tz="Asia/Tokyo")
    dag = DAG("d", start_date=start, timezone="UTC")

    assert dag.timezone == "UTC"
    assert dag.to_spec().start_date == dt.datetime(2023, 12, 31, 15, tzinfo=dt.UTC)


def test_fixed_offset_start_date_gets_an_etc_zone() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))

    assert DAG("d", start_date=start).timezone == "Etc/GMT-5"


def test_default_args_start_date_is_the_dags() -> None:
    dag = DAG("d", default_args={"start_date": pendulum.datetime(2024, 3, 1, tz="UTC")})

    assert dag.start_date == pendulum.datetime(2024, 3, 1, tz="UTC")


def test_task_params_merge_default_args_params() -> None:
    with DAG("d", default_args={"params": {"a": 1, "b": 2}}):
        op = EmptyOperator(task_id="t", params={"b": Param(3, type="integer")})

    assert {k: v.value for k, v in op.params.items()} == {"b": 3}  # default_args params are DAG's


def test_dag_params_include_default_args_params_and_resolve_against_conf() -> None:
    dag = DAG(
        "d",
        default_args={"params": {"region": "eu"}},
        params={"n": Param(5, type="integer", minimum=1), "mode": Param("a", enum=["a", "b"])},
    )

    assert dag.resolve_params(None) == {"region": "eu", "n": 5, "mode": "a"}
    assert dag.resolve_params({"n": 7, "extra": True}) == {
        "region": "eu",
        "n": 7,
        "mode": "a",
        "extra": True,
    }


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"n": "seven"}, "param 'n': 'seven' is not of type integer"),
        ({"n": 0}, "param 'n': 0 is less than the minimum 1"),
        ({"mode": "c"}, "param 'mode': 'c' is not one of"),
    ],
)
def test_resolve_params_names_the_bad_param(conf: dict[str, object], message: str) -> None:
    from chalicelib.core.errors import SlipstreamError

    dag = DAG(
        "d", params={"n": Param(5, type="integer", minimum=1), "mode": Param("a", enum=["a", "b"])}
    )

    with pytest.raises(SlipstreamError, match=message):
        dag.resolve_params(conf)


def test_a_param_without_default_must_come_from_conf() -> None:
    from chalicelib.core.errors import SlipstreamError

    dag = DAG("d", params={"who": Param(type="string")})

    assert dag.resolve_params({"who": "me"}) == {"who": "me"}
    with pytest.raises(SlipstreamError, match="param 'who' has no default"):
        dag.resolve_params({})


def test_custom_operator_subclass_gets_defaults_and_records_its_own_arguments() -> None:
    class Greet(BaseOperator):
        template_fields = ("greeting",)

        def __init__(self, *, greeting: str, loud: bool = False, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.greeting = greeting
            self.loud = loud

        def execute(self, context: object) -> str:
            return self.greeting.upper() if self.loud else self.greeting

    with DAG("d", default_args={"loud": True, "retries": 2}) as dag:
        op = Greet(task_id="g", greeting="hi")

    assert op.loud is True and op.retries == 2
    assert op.execute({}) == "HI"
    assert dag.to_spec().tasks["g"].args == {"greeting": "hi", "loud": True}
