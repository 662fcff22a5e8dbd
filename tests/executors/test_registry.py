"""build_executor and the settings it reads from the environment."""

from __future__ import annotations

import pytest

from chalicelib.executors import build_executor, build_executors, container_environment
from chalicelib.executors.base import DispatchError
from chalicelib.executors.ecs_executor import EcsExecutor
from chalicelib.executors.lambda_executor import LambdaExecutor
from chalicelib.executors.local_executor import LocalExecutor
from chalicelib.executors.settings import ExecutorSettings


def test_settings_come_from_slipstream_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_WORKER_FUNCTION", "slipstream-prod-worker")
    monkeypatch.setenv("SLIPSTREAM_SUBNETS", "subnet-a, subnet-b")
    monkeypatch.setenv("SLIPSTREAM_SECURITY_GROUPS", '["sg-1"]')
    monkeypatch.setenv("SLIPSTREAM_ENDPOINT_URL", "http://127.0.0.1:5000")
    settings = ExecutorSettings()
    assert settings.worker_function == "slipstream-prod-worker"
    assert settings.subnets == ["subnet-a", "subnet-b"]
    assert settings.security_groups == ["sg-1"]
    assert settings.endpoint_url == "http://127.0.0.1:5000"


def test_each_kind_gets_its_executor() -> None:
    settings = ExecutorSettings(worker_function="w", local_workers=3)
    executors = build_executors(("lambda", "ecs", "local"), settings)
    assert isinstance(executors["lambda"], LambdaExecutor)
    assert executors["lambda"].function_name == "w"  # type: ignore[attr-defined]
    assert isinstance(executors["ecs"], EcsExecutor)
    local = executors["local"]
    assert isinstance(local, LocalExecutor)
    assert local.workers == 3
    assert local.pids == []  # built, not started


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(DispatchError, match=r"'batch'.*lambda, ecs, local"):
        build_executor("batch", ExecutorSettings())


def test_containers_get_the_configuration_but_not_the_local_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLIPSTREAM_STAGE", "prod")
    monkeypatch.setenv("SLIPSTREAM_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("SLIPSTREAM_WORKER_MESSAGE", "{}")
    env = container_environment()
    assert env["SLIPSTREAM_STAGE"] == "prod"
    assert "SLIPSTREAM_ENDPOINT_URL" not in env
    assert "SLIPSTREAM_WORKER_MESSAGE" not in env
