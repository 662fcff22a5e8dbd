"""AIRFLOW__SCHEDULER__* settings: read where the DAG is built, recorded in its spec."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.delta_timetables import DeltaDataIntervalTimetable, DeltaTriggerTimetable
from chalicelib.sdk import DAG
from chalicelib.sdk.scheduler_settings import (
    CATCHUP_BY_DEFAULT,
    CRON_DATA_INTERVALS,
    DELTA_DATA_INTERVALS,
    SchedulerSettingError,
    SchedulerSettings,
    deployment_settings,
    scheduler_settings,
    stage_settings_environment,
)

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (CRON_DATA_INTERVALS, DELTA_DATA_INTERVALS, CATCHUP_BY_DEFAULT):
        monkeypatch.delenv(name, raising=False)


def test_airflow_3_defaults_without_settings() -> None:
    assert scheduler_settings({}) == SchedulerSettings(False, False, False)
    with DAG("d", schedule="@daily", start_date=START) as dag:
        pass
    assert isinstance(dag.timetable, CronTriggerTimetable) and dag.catchup is False


@pytest.mark.parametrize(
    ("raw", "value"), [("True", True), ("t", True), ("1", True), ("FALSE", False), ("0", False)]
)
def test_booleans_are_read_as_airflow_reads_them(raw: str, value: bool) -> None:
    assert scheduler_settings({CATCHUP_BY_DEFAULT: raw}).catchup_by_default is value


def test_the_environment_brings_back_airflow_2_data_intervals_and_catchup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CRON_DATA_INTERVALS, "True")
    monkeypatch.setenv(DELTA_DATA_INTERVALS, "True")
    monkeypatch.setenv(CATCHUP_BY_DEFAULT, "True")
    with DAG("c", schedule="@daily", start_date=START) as cron:
        pass
    with DAG("d", schedule=dt.timedelta(hours=1), start_date=START, catchup=False) as delta:
        pass
    assert isinstance(cron.timetable, CronDataIntervalTimetable) and cron.catchup is True
    assert isinstance(delta.timetable, DeltaDataIntervalTimetable) and delta.catchup is False
    assert cron.to_spec(validate=False).timetable.type == "cron"


def test_the_setting_at_construction_is_the_one_the_dag_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with DAG("d", schedule=dt.timedelta(hours=1), start_date=START) as dag:
        pass
    monkeypatch.setenv(DELTA_DATA_INTERVALS, "True")
    assert isinstance(dag.timetable, DeltaTriggerTimetable)


def test_a_value_that_is_not_a_boolean_is_one_problem_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CRON_DATA_INTERVALS, "yes please")
    with DAG("d", schedule="@daily", start_date=START) as dag:
        pass
    messages = [p.message for p in dag.problems()]
    assert messages == [
        "AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS='yes please' is not a boolean: "
        "use True or False"
    ]


def _chalice_config(root: Path) -> None:
    (root / ".chalice").mkdir()
    config = {
        "environment_variables": {CATCHUP_BY_DEFAULT: "True", "OTHER": "x"},
        "stages": {
            "prod": {"environment_variables": {CRON_DATA_INTERVALS: "True"}},
            "dev": {"environment_variables": {CATCHUP_BY_DEFAULT: "False"}},
        },
    }
    (root / ".chalice" / "config.json").write_text(json.dumps(config))


def test_a_stage_declares_its_settings_in_chalice_config(tmp_path: Path) -> None:
    _chalice_config(tmp_path)
    assert stage_settings_environment(tmp_path, "prod") == {
        CATCHUP_BY_DEFAULT: "True",
        CRON_DATA_INTERVALS: "True",
    }
    assert stage_settings_environment(tmp_path, "dev") == {CATCHUP_BY_DEFAULT: "False"}
    assert stage_settings_environment(tmp_path / "elsewhere", "dev") == {}


def test_a_deployment_setting_applies_while_importing_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with deployment_settings({CRON_DATA_INTERVALS: "True", CATCHUP_BY_DEFAULT: "True"}):
        monkeypatch.setenv(CATCHUP_BY_DEFAULT, "False")
        with DAG("d", schedule="@daily", start_date=START) as inside:
            pass
    with DAG("e", schedule="@daily", start_date=START) as outside:
        pass
    assert isinstance(inside.timetable, CronDataIntervalTimetable) and inside.catchup is False
    assert isinstance(outside.timetable, CronTriggerTimetable)


def test_an_unreadable_chalice_config_is_named(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text("{not json")
    with pytest.raises(SchedulerSettingError, match=r"config\.json: cannot read it as JSON"):
        stage_settings_environment(tmp_path, "dev")
