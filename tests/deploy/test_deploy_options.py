"""What a deploy records from the DAG's options and the stage's scheduler settings."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.core.spec import DagSpec
from chalicelib.deploy.bundle_store import LocalBundleStore
from chalicelib.deploy.deployer import deploy
from chalicelib.sdk.scheduler_settings import CATCHUP_BY_DEFAULT, CRON_DATA_INTERVALS
from chalicelib.store.memory import InMemoryStateStore
from tests.deploy.projects import NOW, Project

DAILY = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("daily", schedule="@daily", start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)):
    EmptyOperator(task_id="work")
"""

PAUSING = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("starts_unpaused", schedule=None, is_paused_upon_creation=False):
    EmptyOperator(task_id="work")

with DAG("starts_paused", schedule=None, is_paused_upon_creation=True):
    EmptyOperator(task_id="work")
"""


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRON_DATA_INTERVALS, raising=False)
    monkeypatch.delenv(CATCHUP_BY_DEFAULT, raising=False)


def _deploy(project: Project, store: InMemoryStateStore, bundles: LocalBundleStore, **kw: object):
    return deploy(
        [str(project.dags)], store=store, bundles=bundles, bundle_root=str(project.root), now=NOW,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _spec(store: InMemoryStateStore, dag_id: str) -> DagSpec:
    record = store.get_dag(dag_id)
    assert record is not None and record.current_version is not None
    version = store.get_dag_version(dag_id, record.current_version)
    assert version is not None
    return DagSpec.from_json(version.spec_json)


def test_the_stage_settings_in_chalice_config_decide_the_recorded_timetable(
    project: Project, local_bundles: LocalBundleStore
) -> None:
    project.write("dags/daily.py", DAILY)
    config = {
        "stages": {
            "prod": {
                "environment_variables": {CRON_DATA_INTERVALS: "True", CATCHUP_BY_DEFAULT: "True"}
            }
        }
    }
    project.write(".chalice/config.json", json.dumps(config))

    dev, prod = InMemoryStateStore(), InMemoryStateStore()
    assert _deploy(project, dev, local_bundles, stage="dev").ok
    assert _deploy(project, prod, local_bundles, stage="prod").ok

    assert _spec(dev, "daily").timetable.type == "cron_trigger"
    assert _spec(dev, "daily").catchup is False
    assert _spec(prod, "daily").timetable.type == "cron"
    assert _spec(prod, "daily").catchup is True


def test_a_bad_stage_setting_registers_nothing(
    project: Project, local_bundles: LocalBundleStore
) -> None:
    project.write("dags/daily.py", DAILY)
    project.write(
        ".chalice/config.json",
        json.dumps({"environment_variables": {CRON_DATA_INTERVALS: "sometimes"}}),
    )
    store = InMemoryStateStore()
    report = _deploy(project, store, local_bundles, stage="dev")
    assert not report.ok and store.get_dag("daily") is None
    assert any("CREATE_CRON_DATA_INTERVALS='sometimes'" in p.message for p in report.problems)


def test_is_paused_upon_creation_wins_over_the_deploys_default(
    project: Project, local_bundles: LocalBundleStore
) -> None:
    project.write("dags/pausing.py", PAUSING)
    store = InMemoryStateStore()
    assert _deploy(project, store, local_bundles, paused_at_creation=True).ok
    unpaused, paused = store.get_dag("starts_unpaused"), store.get_dag("starts_paused")
    assert unpaused is not None and not unpaused.paused
    assert paused is not None and paused.paused
    assert _spec(store, "starts_unpaused").is_paused_upon_creation is False


def test_is_paused_upon_creation_applies_only_when_the_dag_is_created(
    project: Project, local_bundles: LocalBundleStore
) -> None:
    project.write("dags/pausing.py", PAUSING)
    store = InMemoryStateStore()
    assert _deploy(project, store, local_bundles).ok
    created = store.get_dag("starts_unpaused")
    assert created is not None
    store.upsert_dag(replace(created, paused=True))
    assert _deploy(project, store, local_bundles).ok
    record = store.get_dag("starts_unpaused")
    assert record is not None and record.paused
