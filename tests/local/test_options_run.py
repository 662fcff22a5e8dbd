"""DAG and task options in a real run: dag.test() with the engine and the worker runtime."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chalicelib.local.runner import run_dag_test
from chalicelib.sdk import DAG, TaskFailed, TaskSkipped, TriggerRule, get_current_context, task
from chalicelib.sdk.scheduler_settings import CRON_DATA_INTERVALS
from operators.bash import BashOperator
from operators.empty import EmptyOperator
from operators.python import PythonOperator

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
AT = "2024-03-05T10:30:00+00:00"


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRON_DATA_INTERVALS, raising=False)


def _intervals(dag_id: str) -> DAG:
    seen: dict[str, object] = {}
    with DAG(dag_id, schedule="@daily", start_date=START) as dag:

        @task
        def look(data_interval_start=None, data_interval_end=None, logical_date=None) -> None:
            seen.update(start=data_interval_start, end=data_interval_end, logical=logical_date)

        look()
    dag.seen = seen  # type: ignore[attr-defined]
    return dag


def test_a_manual_run_of_a_cron_dag_covers_its_logical_date_only() -> None:
    dag = _intervals("trigger_default")
    assert run_dag_test(dag, show=False, logical_date=AT).succeeded
    at = dt.datetime.fromisoformat(AT)
    assert dag.seen == {"start": at, "end": at, "logical": at}  # type: ignore[attr-defined]


def test_the_setting_brings_back_airflow_2s_manual_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CRON_DATA_INTERVALS, "True")
    dag = _intervals("data_intervals")
    assert run_dag_test(dag, show=False, logical_date=AT).succeeded
    seen = dag.seen  # type: ignore[attr-defined]
    assert (seen["start"], seen["end"]) == (
        dt.datetime(2024, 3, 4, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 5, tzinfo=dt.UTC),
    )


def test_all_done_min_one_success_waits_for_all_and_needs_one_success() -> None:
    with DAG("min_one") as dag:

        @task
        def ok() -> None:
            return None

        @task
        def broken() -> None:
            raise TaskFailed("no data")

        @task
        def skipped() -> None:
            raise TaskSkipped("nothing new")

        rule = TriggerRule.ALL_DONE_MIN_ONE_SUCCESS
        both = EmptyOperator(task_id="after_ok_and_broken", trigger_rule=rule)
        failing = EmptyOperator(task_id="after_broken_only", trigger_rule=rule)
        with_skip = EmptyOperator(task_id="after_a_skip", trigger_rule=rule)
        a, b, c = ok(), broken(), skipped()
        [a, b] >> both
        b >> failing
        [a, c] >> with_skip

    result = run_dag_test(dag, show=False)
    assert result.task_states["after_ok_and_broken"] == "success"
    assert result.task_states["after_broken_only"] == "upstream_failed"
    assert result.task_states["after_a_skip"] == "skipped"


def test_on_execute_and_on_skipped_callbacks() -> None:
    calls: list[tuple[str, str]] = []

    def before(context: dict) -> None:
        calls.append(("execute", context["ti"].task_id))

    def on_skip(context: dict) -> None:
        calls.append(("skipped", context["ti"].task_id))

    def breaks(context: dict) -> None:
        raise RuntimeError("a callback's error never changes the outcome")

    callbacks = {"on_execute_callback": before, "on_skipped_callback": on_skip}
    with DAG("callbacks", default_args=callbacks) as dag:

        @task
        def work() -> None:
            calls.append(("work", "work"))

        @task
        def skip_me() -> None:
            raise TaskSkipped("nothing new")

        @task(on_execute_callback=[breaks, before])
        def robust() -> None:
            return None

        skip_me() >> EmptyOperator(task_id="skipped_by_the_engine")
        work()
        robust()

    result = run_dag_test(dag, show=False)
    assert result.task_states["robust"] == "success"
    assert result.task_states["skipped_by_the_engine"] == "skipped"
    assert calls.index(("execute", "work")) < calls.index(("work", "work"))
    assert ("skipped", "skip_me") in calls and ("execute", "robust") in calls
    assert not [c for c in calls if c[1] == "skipped_by_the_engine"]


def test_macros_filters_searchpath_and_native_rendering(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "greet.sh").write_text("echo '{{ team | shout }} {{ greeting }}' > " + str(out))
    got: dict[str, object] = {}

    def keep(n: object, items: object) -> None:
        got.update(n=n, items=items)

    with DAG(
        "templating",
        user_defined_macros={"greeting": "hello"},
        user_defined_filters={"shout": str.upper},
        template_searchpath=[str(templates)],
        render_template_as_native_obj=True,
    ) as dag:
        dag.user_defined_macros["team"] = "data"
        BashOperator(task_id="bash", bash_command="greet.sh")
        PythonOperator(
            task_id="native",
            python_callable=keep,
            op_kwargs={"n": "{{ 1 + 2 }}", "items": "{{ [greeting] * 2 }}"},
        )

    result = run_dag_test(dag, show=False)
    assert result.succeeded, result.errors
    assert out.read_text().strip() == "DATA hello"
    assert got == {"n": 3, "items": ["hello", "hello"]}


def test_map_index_template_names_each_mapped_instance() -> None:
    with DAG("named_map") as dag:

        @task(map_index_template="{{ region }}")
        def load(region: str) -> None:
            get_current_context()["region"] = region.upper()

        @task(map_index_template="{{ undefined_name }}")
        def unnamed(n: int) -> int:
            return n

        load.expand(region=["eu", "us"])
        unnamed.expand(n=[1])

    result = run_dag_test(dag, show=False)
    assert result.succeeded
    # the task put the value into its context; a template that cannot render names nothing
    assert result.rendered_map_indexes == {"load[0]": "EU", "load[1]": "US"}


def test_max_active_tis_per_dagrun_caps_a_map_in_dag_test() -> None:
    import threading

    active: list[int] = [0]
    peak: list[int] = [0]
    lock = threading.Lock()
    pairs = threading.Barrier(2, timeout=10)  # two at a time meet here: the cap is reached

    with DAG("capped", max_active_tasks=16) as dag:

        @task(max_active_tis_per_dagrun=2)
        def work(x: int) -> int:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            pairs.wait()
            with lock:
                active[0] -= 1
            return x

        work.expand(x=list(range(6)))

    result = run_dag_test(dag, show=False)
    assert result.succeeded, result.errors
    assert peak[0] == 2
