"""What DAG code imports: BaseHook.get_connection and Variable.get, as in Airflow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import chalicelib.sdk as sdk
from chalicelib.sdk import AirflowNotFoundException, BaseHook, Connection, Variable
from chalicelib.secrets import lookup, secret_masker


class Backend:
    """An in-memory store standing in for Secrets Manager / SSM."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, str], Connection] = {}
        self.variables: dict[tuple[str, str], str] = {}

    def connection_location(self, tenant: str, conn_id: str) -> str:
        return f"store {tenant}/{conn_id}"

    def read_connection(self, tenant: str, conn_id: str) -> Connection | None:
        return self.connections.get((tenant, conn_id))

    def variable_location(self, tenant: str, key: str) -> str:
        return f"store {tenant}/{key}"

    def read_variable(self, tenant: str, key: str) -> str | None:
        return self.variables.get((tenant, key))


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    for name in ("AIRFLOW_CONN_PG", "AIRFLOW_VAR_LIMIT", "AIRFLOW_VAR_CFG"):
        monkeypatch.delenv(name, raising=False)
    store = Backend()
    lookup.install_backend(store)
    secret_masker.clear()
    yield store
    lookup.install_backend(None)
    secret_masker.clear()


def test_names_are_exported() -> None:
    assert {"BaseHook", "Connection", "Variable", "AirflowNotFoundException"} <= set(sdk.__all__)


def test_get_connection_env_first_then_store(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.connections["default", "pg"] = Connection(conn_id="pg", host="store")

    assert BaseHook.get_connection("pg").host == "store"
    monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://env-host")
    assert BaseHook.get_connection("pg").host == "env-host"


def test_get_connection_missing(backend: Backend) -> None:
    with pytest.raises(AirflowNotFoundException) as caught:
        BaseHook.get_connection("pg")

    assert str(caught.value) == (
        "connection 'pg' not found: looked in environment variable AIRFLOW_CONN_PG "
        "and store default/pg"
    )


def test_hooks_subclass_and_log() -> None:
    class MyHook(BaseHook):
        pass

    assert MyHook().log.name == "slipstream.hook.MyHook"


def test_variable_get_text_json_and_default(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.variables["default", "cfg"] = '{"rows": 10}'
    monkeypatch.setenv("AIRFLOW_VAR_LIMIT", "5")

    assert Variable.get("limit") == "5"
    assert Variable.get("cfg", deserialize_json=True) == {"rows": 10}
    assert Variable.get("nope", default_var=None) is None
    assert Variable.get("nope", "d") == "d"


def test_variable_missing_is_a_key_error(backend: Backend) -> None:
    with pytest.raises(KeyError, match="AIRFLOW_VAR_NOPE and store default/nope"):
        Variable.get("nope")


def test_tenant_scope_selects_the_store_entries(backend: Backend) -> None:
    backend.variables["acme", "limit"] = "7"

    with lookup.tenant_scope("acme"):
        assert Variable.get("limit") == "7"
    assert Variable.get("limit", None) is None
