"""The Chalice app as API Gateway would call it, and its stage configuration as Chalice reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chalice.cli.factory import CLIFactory
from chalice.test import Client

import chalicelib
from app import app

REPO_ROOT = Path(__file__).resolve().parent.parent
STAGES = sorted(json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())["stages"])


def test_health_answers_ok_with_the_package_version() -> None:
    with Client(app, stage_name="local", project_dir=str(REPO_ROOT)) as client:
        response = client.http.get("/health")

    assert response.status_code == 200
    assert json.loads(response.body) == {"status": "ok", "version": chalicelib.__version__}


def test_health_accepts_only_get() -> None:
    with Client(app, stage_name="local", project_dir=str(REPO_ROOT)) as client:
        response = client.http.post("/health")

    assert response.status_code == 405


def test_config_declares_the_three_stages() -> None:
    assert STAGES == ["dev", "local", "prod"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_tells_the_code_which_stage_it_is(stage: str) -> None:
    config = CLIFactory(str(REPO_ROOT)).create_config_obj(chalice_stage_name=stage)
    handler = config.scope(stage, "api_handler")

    assert config.app_name == "slipstream"
    assert handler.environment_variables["SLIPSTREAM_STAGE"] == stage
    assert handler.environment_variables["POWERTOOLS_SERVICE_NAME"] == "slipstream"
    # API Gateway caps a request at 29 s; Lambda at 900 s.
    assert 29 <= handler.lambda_timeout <= 900
    assert 128 <= handler.lambda_memory_size <= 10240
