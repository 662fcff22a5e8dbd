"""Deadline alerts as DAG files write them: Airflow's names, checks, and the spec."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chalicelib.core.deadlines import Reference
from chalicelib.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, SyncCallback
from chalicelib.sdk.loader import load_dags
from operators.empty import EmptyOperator
from tests.sdk.dagfiles import line_of, write_dag

HOUR = dt.timedelta(hours=1)


def notify(**kwargs: object) -> None:
    return None


async def notify_async(**kwargs: object) -> None:
    return None


def test_an_alert_becomes_its_spec_with_the_callbacks_path() -> None:
    fixed = dt.datetime(2025, 6, 26, 9, 30)  # naive: UTC
    alerts = [
        DeadlineAlert(DeadlineReference.DAGRUN_LOGICAL_DATE, HOUR, SyncCallback(notify)),
        DeadlineAlert(
            DeadlineReference.FIXED_DATETIME(fixed),
            -2 * HOUR,
            AsyncCallback("tests.sdk.test_deadline.notify_async", kwargs={"to": "ops"}),
            name="before the meeting",
        ),
    ]
    with DAG("timed", deadline=alerts) as dag:
        EmptyOperator(task_id="a")
    assert not dag.problems()
    first, second = dag.to_spec().deadlines
    assert (first.reference, first.interval, first.callback_kind) == (
        Reference.DAGRUN_LOGICAL_DATE,
        3600.0,
        "sync",
    )
    assert first.callback.endswith("test_deadline:notify") or first.callback.endswith("notify")
    assert second.reference is Reference.FIXED_DATETIME
    assert second.fixed == fixed.replace(tzinfo=dt.UTC) and second.interval == -7200.0
    assert second.callback == "tests.sdk.test_deadline.notify_async"
    assert second.name == "before the meeting"


def test_one_alert_alone_is_accepted_as_airflow_does() -> None:
    alert = DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, HOUR, SyncCallback(notify))
    with DAG("one", deadline=alert) as dag:
        EmptyOperator(task_id="a")
    assert [d.reference for d in dag.to_spec().deadlines] == [Reference.DAGRUN_QUEUED_AT]


@pytest.mark.parametrize(
    "reference", [DeadlineReference.DAGRUN_LOGICAL_DATE, DeadlineReference.DAGRUN_QUEUED_AT]
)
def test_a_negative_interval_from_the_run_is_refused(reference: object) -> None:
    with pytest.raises(ValueError, match=r"negative.*always be missed.*FIXED_DATETIME"):
        DeadlineAlert(reference, dt.timedelta(minutes=-5), SyncCallback(notify))


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("DAGRUN_LOGICAL_DATE", "reference must be DeadlineReference"),
        (dt.datetime(2025, 1, 1), "reference must be DeadlineReference"),
        (None, "reference must be DeadlineReference"),
    ],
)
def test_a_bad_reference_is_refused(reference: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        DeadlineAlert(reference, HOUR, SyncCallback(notify))


def test_references_slipstream_lacks_or_misuses_say_so() -> None:
    with pytest.raises(NotImplementedError, match="AVERAGE_RUNTIME is not available"):
        DeadlineReference.AVERAGE_RUNTIME(limit=5)
    aware = dt.datetime(2025, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert DeadlineReference.FIXED_DATETIME(dt=aware).fixed == dt.datetime(
        2025, 1, 1, 7, tzinfo=dt.UTC
    )  # Airflow's keyword; kept in UTC
    with pytest.raises(TypeError, match="FIXED_DATETIME needs a datetime"):
        DeadlineReference.FIXED_DATETIME("2025-01-01")  # type: ignore[arg-type]


def test_an_interval_that_is_not_a_timedelta_is_refused() -> None:
    with pytest.raises(TypeError, match="interval must be a timedelta, got int"):
        DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, 3600, SyncCallback(notify))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: SyncCallback(42), TypeError, "needs a callable or a dotted path"),
        (lambda: SyncCallback("not a path"), ValueError, "is not a dotted path"),
        (lambda: AsyncCallback(notify), TypeError, "not awaitable.*SyncCallback"),
        (
            lambda: SyncCallback(notify, kwargs={"context": 1}),
            ValueError,
            "'context' is a reserved kwarg",
        ),
        (lambda: SyncCallback(notify, kwargs=["a"]), TypeError, "kwargs must be a dict"),
    ],
)
def test_a_callback_that_cannot_be_called_is_refused(make, error, message) -> None:
    with pytest.raises(error, match=message):
        make()


def test_a_bare_function_as_the_callback_is_refused() -> None:
    with pytest.raises(TypeError, match=r"AsyncCallback\(...\) or SyncCallback\(...\)"):
        DeadlineAlert(DeadlineReference.DAGRUN_QUEUED_AT, HOUR, notify)  # type: ignore[arg-type]


def test_a_deadline_that_is_not_an_alert_is_a_problem_of_the_dag() -> None:
    with DAG("wrong", deadline=dt.timedelta(hours=1)) as dag:
        EmptyOperator(task_id="a")
    (problem,) = dag.problems()
    assert problem.message.startswith("deadline must be a DeadlineAlert or a list of them")


def test_an_airflow_file_imports_the_names_and_a_mistake_names_its_line(tmp_path: Path) -> None:
    good = write_dag(
        tmp_path,
        "good.py",
        """
        from datetime import timedelta
        from airflow import DAG
        from airflow.sdk import DeadlineAlert as SdkAlert
        from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference
        from airflow.sdk.definitions.callback import SyncCallback

        def notify(**kwargs):
            pass

        assert SdkAlert is DeadlineAlert
        with DAG("good", deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=timedelta(minutes=15),
            callback=SyncCallback(notify, kwargs={"text": "late"}),
        )):
            pass
        """,
    )
    result = load_dags([str(good)])
    assert result.ok, result.problems
    assert result.dags["good"].to_spec().deadlines[0].interval == 900.0

    bad = write_dag(
        tmp_path,
        "bad.py",
        """
        from datetime import timedelta
        from airflow import DAG
        from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback

        with DAG("bad", deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=-15),  # here
            callback=SyncCallback(print),
        )):
            pass
        """,
    )
    (problem,) = load_dags([str(bad)]).problems
    assert "interval -1 day, 23:45:00 is negative" in str(problem)
    assert problem.file and problem.file.endswith("bad.py")
    assert problem.line == line_of(bad, "with DAG")


def test_airflow_2_sla_refusal_points_at_deadline_alert() -> None:
    with DAG("slas", sla_miss_callback=lambda *a: None) as dag:
        EmptyOperator(task_id="a", sla=dt.timedelta(minutes=5))
    found = dag.problems()
    assert len(found) == 2
    for problem in found:
        assert "DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE" in problem.message
        assert "airflow.sdk.definitions.deadline" in problem.message
