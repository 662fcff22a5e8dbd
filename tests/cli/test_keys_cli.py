"""``slipstream keys`` straight against the stage's store (no API URL): how the
first admin key of a deployment is made."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.cli.main import _register_commands, app

_register_commands()
runner = CliRunner()


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLIPSTREAM_STAGE", "keystest")
    for name in ("SLIPSTREAM_ENDPOINT_URL", "SLIPSTREAM_API_URL", "SLIPSTREAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    wiring.reset()
    with mock_aws():
        from chalicelib.store.models import build_models, create_tables

        create_tables(build_models(wiring.store_settings()))
        yield wiring.state_store()
    wiring.reset()


def test_create_list_revoke(store) -> None:
    created = runner.invoke(
        app,
        ["keys", "create", "--tenant", "acme", "--role", "admin", "--name", "first", "--json"],
    )
    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    now = dt.datetime.now(dt.UTC)
    key = deps.api_keys().verify(body["api_key"], now)
    assert key is not None and (key.tenant, key.role, key.name) == ("acme", "admin", "first")

    listed = runner.invoke(app, ["keys", "list", "--tenant", "acme", "--json"])
    assert [k["key_id"] for k in json.loads(listed.stdout)] == [body["key_id"]]
    assert "api_key" not in listed.stdout and body["api_key"] not in listed.stdout

    assert runner.invoke(app, ["keys", "revoke", body["key_id"]]).exit_code == 0
    assert deps.api_keys().verify(body["api_key"], now) is None
    again = runner.invoke(app, ["keys", "revoke", body["key_id"]])
    assert again.exit_code == 2 and again.stderr.startswith("error: ")


def test_the_key_text_is_printed_once(store) -> None:
    result = runner.invoke(app, ["keys", "create", "--tenant", "default", "--role", "viewer"])
    assert result.exit_code == 0
    assert result.stdout.count("ssk_") == 1


def test_bad_input_is_exit_2(store) -> None:
    no_tenant = runner.invoke(app, ["keys", "create", "--role", "admin"])
    assert no_tenant.exit_code == 2 and "--tenant is required" in no_tenant.stderr
    bad_role = runner.invoke(app, ["keys", "create", "--tenant", "t", "--role", "root"])
    assert bad_role.exit_code == 2
    bad_date = runner.invoke(
        app, ["keys", "create", "--tenant", "t", "--role", "user", "--expires", "soon"]
    )
    assert bad_date.exit_code == 2 and "ISO 8601" in bad_date.stderr
    assert list(deps.api_keys().list("t")) == []
