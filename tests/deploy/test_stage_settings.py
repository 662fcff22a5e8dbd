"""Every setting a stage leaves unset names that stage's own resource, and the
region comes from the Lambda environment, never from a fixed default."""

from __future__ import annotations

import pytest

from chalicelib.executors.settings import ExecutorSettings
from chalicelib.secrets.settings import SecretsSettings
from chalicelib.store.settings import StoreSettings
from chalicelib.wiring import RuntimeSettings


def _names(stage: str) -> set[str]:
    store = StoreSettings(stage=stage)
    executors = ExecutorSettings(stage=stage)
    return {
        store.bucket,
        store.task_logs_group,
        *(store.table_name(e) for e in ("dags", "dag-runs", "task-instances")),
        executors.worker_function,
        executors.ecs_cluster,
        executors.log_group,
        RuntimeSettings(stage=stage).queue_name,
        SecretsSettings(stage=stage).prefix,
    }


def test_two_stages_share_no_default_name() -> None:
    dev, prod = _names("dev"), _names("prod")
    assert len(dev) == len(prod) == 10
    assert dev.isdisjoint(prod)
    assert all("prod" in name for name in prod)


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION", "SLIPSTREAM_REGION"])
def test_region_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "SLIPSTREAM_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "eu-west-3")
    assert StoreSettings().region == "eu-west-3"
    assert ExecutorSettings().region == "eu-west-3"
    assert SecretsSettings().region == "eu-west-3"


def test_no_region_is_invented(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "SLIPSTREAM_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert StoreSettings().region is None
    assert ExecutorSettings(region="ap-south-1").region == "ap-south-1"


def test_explicit_names_win_over_the_stage_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_WORKER_FUNCTION", "slipstream-dev-Worker-AbC123")
    monkeypatch.setenv("SLIPSTREAM_BUCKET", "slipstream-dev-state-123456789012")
    assert ExecutorSettings(stage="dev").worker_function == "slipstream-dev-Worker-AbC123"
    assert StoreSettings(stage="dev").bucket == "slipstream-dev-state-123456789012"
