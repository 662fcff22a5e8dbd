"""ConnectionStore on moto's Secrets Manager."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.secrets import AlreadyExists, Connection, InvalidKey, NotFound
from chalicelib.secrets.connection_store import ConnectionStore
from tests.secrets.conftest import PREFIX, CallCounter


def pg(conn_id: str = "pg", password: str = "s3cret-pw") -> Connection:
    return Connection(
        conn_id=conn_id,
        conn_type="postgres",
        host="db.example.com",
        login="app",
        password=password,
        schema="sales",
        port=5432,
        extra='{"sslmode": "require"}',
        description="warehouse",
    )


def test_round_trip(connections: ConnectionStore) -> None:
    connections.put("acme", pg(), create_only=True)

    assert connections.get("acme", "pg") == pg()


def test_secret_is_named_by_prefix_tenant_and_id(
    connections: ConnectionStore, sm_client: Any
) -> None:
    connections.put("acme", pg(), create_only=True)

    secret = sm_client.get_secret_value(SecretId=f"{PREFIX}/acme/connections/pg")
    assert json.loads(secret["SecretString"])["host"] == "db.example.com"


def test_missing_is_none(connections: ConnectionStore) -> None:
    assert connections.get("acme", "nope") is None


def test_create_twice_conflicts(connections: ConnectionStore) -> None:
    connections.put("acme", pg(), create_only=True)

    with pytest.raises(AlreadyExists, match="'pg' already exists"):
        connections.put("acme", pg(password="other-pw"), create_only=True)
    assert connections.get("acme", "pg") == pg()


def test_update_replaces_and_update_missing_is_not_found(connections: ConnectionStore) -> None:
    with pytest.raises(NotFound, match="'pg' not found"):
        connections.put("acme", pg(), create_only=False)

    connections.put("acme", pg(), create_only=True)
    connections.put("acme", pg(password="rotated-pw"), create_only=False)

    found = connections.get("acme", "pg")
    assert found is not None and found.password == "rotated-pw"


def test_delete_then_create_again(connections: ConnectionStore) -> None:
    connections.put("acme", pg(), create_only=True)

    assert connections.delete("acme", "pg") is True
    assert connections.delete("acme", "pg") is False
    assert connections.get("acme", "pg") is None
    connections.put("acme", pg(), create_only=True)  # no recovery window blocks the id


def test_tenants_are_isolated(connections: ConnectionStore) -> None:
    connections.put("a", pg(password="tenant-a-pw"), create_only=True)
    connections.put("ab", pg("other"), create_only=True)

    assert connections.get("b", "pg") is None
    assert [c.conn_id for c in connections.list("a")[0]] == ["pg"]
    assert [c.conn_id for c in connections.list("ab")[0]] == ["other"]
    assert connections.list("b") == ([], None)


def test_list_pages_with_small_pages_and_no_other_tenant(
    connections: ConnectionStore, counter: CallCounter
) -> None:
    ids = [f"c{i:02d}" for i in range(7)]
    for conn_id in ids:
        connections.put("acme", pg(conn_id), create_only=True)
    connections.put("other", pg("intruder"), create_only=True)
    counter.calls.clear()

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = connections.list("acme", limit=3, next_token=token)
        assert len(page) <= 3
        seen.extend(c.conn_id for c in page)
        pages += 1
        if token is None:
            break

    assert sorted(seen) == ids
    assert pages >= 3
    assert counter.calls["ListSecrets"] == pages


def test_list_returns_full_connections(connections: ConnectionStore) -> None:
    connections.put("acme", pg(), create_only=True)

    assert connections.list("acme", limit=10) == ([pg()], None)


@pytest.mark.parametrize("bad", ["", "a/b", "white space", "x" * 251, "ünï"])
def test_invalid_ids_are_rejected_clearly(connections: ConnectionStore, bad: str) -> None:
    with pytest.raises(InvalidKey, match="conn_id"):
        connections.get("acme", bad)


def test_invalid_tenant_is_rejected(connections: ConnectionStore) -> None:
    with pytest.raises(InvalidKey, match="tenant"):
        connections.put("../b", pg(), create_only=True)
