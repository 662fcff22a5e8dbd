"""Operators run with connections from the environment only, AWS ones on moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from chalicelib.secrets import lookup
from chalicelib.secrets.connection import Connection

REGION = "us-east-1"


class _NoStore:
    """A secrets store with nothing in it: connections come from AIRFLOW_CONN_* only."""

    def connection_location(self, tenant: str, conn_id: str) -> str:
        return "the empty test store"

    def read_connection(self, tenant: str, conn_id: str) -> Connection | None:
        return None

    def variable_location(self, tenant: str, key: str) -> str:
        return "the empty test store"

    def read_variable(self, tenant: str, key: str) -> str | None:
        return None


@pytest.fixture(autouse=True)
def no_secrets_store() -> Iterator[None]:
    lookup.install_backend(_NoStore())
    yield
    lookup.install_backend(None)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, fake credentials and a region; no ``aws_default`` connection (default chain)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    with mock_aws():
        yield
