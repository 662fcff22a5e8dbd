"""DAG code's lookup: environment first, then the cached store, per tenant."""

from __future__ import annotations

import pytest

from chalicelib.secrets import Connection, ConnectionNotFound, VariableNotFound, lookup
from chalicelib.secrets.cached import CachedStoreBackend
from chalicelib.secrets.connection_store import ConnectionStore
from chalicelib.secrets.variable_store import VariableRecord, VariableStore
from tests.secrets.conftest import PREFIX, CallCounter


def stored(password: str = "from-store-pw") -> Connection:
    return Connection(conn_id="pg", conn_type="postgres", host="store-host", password=password)


def test_store_is_read_for_the_current_tenant(
    connections: ConnectionStore, backend: CachedStoreBackend
) -> None:
    connections.put("acme", stored(), create_only=True)

    with lookup.tenant_scope("acme"):
        assert lookup.get_connection("pg").host == "store-host"


def test_tenant_a_cannot_read_tenant_b(
    connections: ConnectionStore, backend: CachedStoreBackend
) -> None:
    connections.put("b", stored(), create_only=True)

    with lookup.tenant_scope("a"), pytest.raises(ConnectionNotFound):
        lookup.get_connection("pg")


def test_default_tenant_is_default(
    connections: ConnectionStore, backend: CachedStoreBackend
) -> None:
    connections.put("default", stored(), create_only=True)

    assert lookup.current_tenant.get() == "default"
    assert lookup.get_connection("pg").host == "store-host"


def test_environment_wins_over_the_store(
    connections: ConnectionStore,
    backend: CachedStoreBackend,
    counter: CallCounter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connections.put("default", stored(), create_only=True)
    monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://u:envpw@env-host:1/db")
    counter.calls.clear()

    assert lookup.get_connection("pg").host == "env-host"
    assert counter.calls == {}


def test_environment_json_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MY_API", '{"conn_type": "http", "host": "api"}')

    assert lookup.get_connection("my_api").host == "api"


def test_missing_connection_names_every_place_looked(backend: CachedStoreBackend) -> None:
    with pytest.raises(ConnectionNotFound) as caught:
        lookup.get_connection("pg")

    assert str(caught.value) == (
        "connection 'pg' not found: looked in environment variable AIRFLOW_CONN_PG "
        f"and Secrets Manager secret {PREFIX}/default/connections/pg"
    )


def test_missing_variable_is_a_key_error_naming_every_place(backend: CachedStoreBackend) -> None:
    with lookup.tenant_scope("acme"), pytest.raises(KeyError) as caught:
        lookup.get_variable("bucket")

    assert isinstance(caught.value, VariableNotFound)
    assert str(caught.value) == (
        "variable 'bucket' not found: looked in environment variable AIRFLOW_VAR_BUCKET "
        f"and SSM parameter /{PREFIX}/acme/variables/bucket"
    )


def test_variable_env_then_store(
    variables: VariableStore, backend: CachedStoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables.put("default", VariableRecord("bucket", "from-store"), create_only=True)

    assert lookup.get_variable("bucket") == "from-store"
    monkeypatch.setenv("AIRFLOW_VAR_BUCKET", "from-env")
    assert lookup.get_variable("bucket") == "from-env"


def test_second_read_makes_no_aws_call(
    connections: ConnectionStore,
    variables: VariableStore,
    backend: CachedStoreBackend,
    counter: CallCounter,
) -> None:
    connections.put("default", stored(), create_only=True)
    variables.put("default", VariableRecord("k", "v"), create_only=True)
    counter.calls.clear()

    for _ in range(3):
        lookup.get_connection("pg")
        lookup.get_variable("k")

    assert counter.calls == {"GetSecretValue": 1, "GetParameter": 1}


def test_cache_is_per_tenant(connections: ConnectionStore, backend: CachedStoreBackend) -> None:
    connections.put("a", stored("pw-of-a-tenant"), create_only=True)
    connections.put("b", stored("pw-of-b-tenant"), create_only=True)

    with lookup.tenant_scope("a"):
        assert lookup.get_connection("pg").password == "pw-of-a-tenant"
    with lookup.tenant_scope("b"):
        assert lookup.get_connection("pg").password == "pw-of-b-tenant"


def test_a_miss_is_not_cached(connections: ConnectionStore, backend: CachedStoreBackend) -> None:
    with pytest.raises(ConnectionNotFound):
        lookup.get_connection("pg")
    connections.put("default", stored(), create_only=True)

    assert lookup.get_connection("pg").host == "store-host"


def test_an_id_the_store_cannot_hold_is_still_looked_up_in_the_environment(
    backend: CachedStoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConnectionNotFound, match="AIRFLOW_CONN_A/B and no store"):
        lookup.get_connection("a/b")


def test_the_default_backend_is_built_lazily_from_settings(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_STAGE", "qa")

    with pytest.raises(ConnectionNotFound, match="secret slipstream/qa/default/connections/x"):
        lookup.get_connection("x")


def test_prefix_setting_overrides_stage(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_SECRETS_PREFIX", "/corp/etl/")

    with pytest.raises(ConnectionNotFound, match="secret corp/etl/default/connections/x"):
        lookup.get_connection("x")
