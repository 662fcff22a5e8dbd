"""`slipstream pools set|list` against the stage's store (DynamoDB on moto)."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from chalicelib import wiring
from chalicelib.cli.main import _register_commands, app

_register_commands()
runner = CliRunner()


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLIPSTREAM_STAGE", "poolstest")
    for name in ("SLIPSTREAM_ENDPOINT_URL", "SLIPSTREAM_API_URL"):
        monkeypatch.delenv(name, raising=False)
    wiring.reset()
    with mock_aws():
        from chalicelib.store.models import build_models, create_tables

        create_tables(build_models(wiring.store_settings()))
        yield wiring.state_store()
    wiring.reset()


def test_set_and_list(store) -> None:
    assert runner.invoke(app, ["pools", "set", "warehouse", "3"]).exit_code == 0
    assert runner.invoke(app, ["pools", "set", "warehouse", "5"]).exit_code == 0
    result = runner.invoke(app, ["pools", "list", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == [{"pool": "warehouse", "slots": 5, "used": 0}]
    assert store.pools() == {"warehouse": 5}


def test_delete(store) -> None:
    assert runner.invoke(app, ["pools", "set", "warehouse", "3"]).exit_code == 0
    assert runner.invoke(app, ["pools", "delete", "warehouse"]).exit_code == 0
    assert store.pools() == {}
    missing = runner.invoke(app, ["pools", "delete", "warehouse"])
    assert missing.exit_code == 2 and missing.stderr == "error: no pool 'warehouse'\n"


def test_bad_slots_are_refused(store) -> None:
    result = runner.invoke(app, ["pools", "set", "warehouse", "-1"])
    assert result.exit_code == 2
    assert store.pools() == {}
