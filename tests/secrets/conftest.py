"""moto-backed stores, a counting hook on the clients, and a clean masker per test."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.secrets import lookup, secret_masker
from chalicelib.secrets.cached import CachedStoreBackend
from chalicelib.secrets.connection_store import ConnectionStore
from chalicelib.secrets.variable_store import VariableStore

PREFIX = "slipstream/test"


class CallCounter:
    """Counts AWS operations a client sends, via botocore's before-call event."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call", self._seen)
        return client

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


@pytest.fixture(autouse=True)
def clean_secrets_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")):
            monkeypatch.delenv(name)
    secret_masker.clear()
    lookup.install_backend(None)
    yield
    secret_masker.clear()
    lookup.install_backend(None)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def counter() -> CallCounter:
    return CallCounter()


@pytest.fixture
def sm_client(aws: None, counter: CallCounter) -> Any:
    return counter.attach(boto3.client("secretsmanager", region_name="us-east-1"))


@pytest.fixture
def ssm_client(aws: None, counter: CallCounter) -> Any:
    return counter.attach(boto3.client("ssm", region_name="us-east-1"))


@pytest.fixture
def connections(sm_client: Any) -> ConnectionStore:
    return ConnectionStore(sm_client, PREFIX)


@pytest.fixture
def variables(ssm_client: Any) -> VariableStore:
    return VariableStore(ssm_client, PREFIX)


@pytest.fixture
def backend(sm_client: Any, ssm_client: Any) -> CachedStoreBackend:
    """The worker's cached read path on the same moto clients, installed for DAG code."""
    installed = CachedStoreBackend(sm_client, ssm_client, PREFIX, max_age=300)
    lookup.install_backend(installed)
    return installed
