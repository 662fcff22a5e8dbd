"""bench/ui_seed.py writes DAGs straight into moto's tables: the items must be the
ones a first deploy through the store writes, or the DAG list bench would time
something the API never reads."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from chalicelib import wiring
from chalicelib.deploy.apply import apply_plan
from chalicelib.deploy.deployer import DeployPlan, plan_deploy
from chalicelib.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
DAGS = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("daily", schedule="@daily", start_date=dt.datetime(2026, 1, 1), tags=["b", "a"]):
    EmptyOperator(task_id="only")

with DAG("manual", schedule=None, start_date=dt.datetime(2026, 1, 1),
         is_paused_upon_creation=False, description="by hand"):
    EmptyOperator(task_id="first") >> EmptyOperator(task_id="second")
"""
EVENTS = """
import datetime as dt

from chalicelib.sdk import DAG, S3Event
from operators.empty import EmptyOperator

with DAG("on_upload", schedule=S3Event("in", prefix="x/"), start_date=dt.datetime(2026, 1, 1)):
    EmptyOperator(task_id="only")
"""


def _ui_seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ui_seed", ROOT / "bench" / "ui_seed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plan(tmp_path: Path, text: str) -> DeployPlan:
    """A project of one DAG file, planned as ``slipstream deploy`` plans it."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "bench.py").write_text(text)
    (tmp_path / "operators").symlink_to(ROOT / "operators")
    plan = plan_deploy([str(tmp_path / "dags")], bundle_root=str(tmp_path))
    assert plan.ok, plan.problems
    return plan


def _items(ui_seed: ModuleType) -> list[str]:
    store = wiring.state_store()
    found = []
    for model in (store.models.dag, store.models.dag_version):
        table = ui_seed.moto_table(model.Meta.table_name)
        found += [json.dumps(item.to_json(), sort_keys=True) for item in table.all_items()]
    return sorted(found)


def test_seeded_items_are_what_a_first_deploy_writes(tmp_path: Path) -> None:
    ui_seed, plan = _ui_seed(), _plan(tmp_path, DAGS)
    with LocalStack(workers=1, tick_seconds=3600):
        report = apply_plan(
            plan, store=wiring.state_store(), bundles=wiring.bundle_store(), now=NOW
        )
        assert report.ok, report.problems
        deployed = _items(ui_seed)
    with LocalStack(workers=1, tick_seconds=3600):
        seeded_count = ui_seed.seed_dags(wiring.state_store(), wiring.bundle_store(), plan, NOW)
        seeded = _items(ui_seed)
        assert plan.bundle is not None and wiring.bundle_store().exists(plan.bundle.key)
        with pytest.raises(ValueError, match="deployed already"):
            ui_seed.seed_dags(wiring.state_store(), wiring.bundle_store(), plan, NOW)
    assert seeded_count == 2
    assert len(deployed) == 6  # per DAG: its row, its version, its version counter
    assert seeded == deployed


def test_dags_with_event_triggers_are_refused(tmp_path: Path) -> None:
    ui_seed, plan = _ui_seed(), _plan(tmp_path, EVENTS)
    with LocalStack(workers=1, tick_seconds=3600):
        with pytest.raises(ValueError, match="on_upload: seed DAGs without event triggers"):
            ui_seed.seed_dags(wiring.state_store(), wiring.bundle_store(), plan, NOW)
        assert _items(ui_seed) == []
