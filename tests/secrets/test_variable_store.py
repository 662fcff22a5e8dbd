"""VariableStore on moto's SSM Parameter Store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.secrets import AlreadyExists, InvalidKey, InvalidValue, NotFound
from chalicelib.secrets.variable_store import VariableRecord, VariableStore
from tests.secrets.conftest import PREFIX, CallCounter


def test_round_trip_as_secure_string(variables: VariableStore, ssm_client: Any) -> None:
    variables.put("acme", VariableRecord("bucket", "s3://b", "landing"), create_only=True)

    assert variables.get("acme", "bucket") == VariableRecord("bucket", "s3://b", "landing")
    param = ssm_client.get_parameter(Name=f"/{PREFIX}/acme/variables/bucket")["Parameter"]
    assert param["Type"] == "SecureString"
    stored = ssm_client.get_parameter(Name=f"/{PREFIX}/acme/variables/bucket", WithDecryption=True)[
        "Parameter"
    ]["Value"]
    assert json.loads(stored) == {"value": "s3://b", "description": "landing"}


def test_missing_is_none(variables: VariableStore) -> None:
    assert variables.get("acme", "nope") is None


def test_create_twice_conflicts(variables: VariableStore) -> None:
    variables.put("acme", VariableRecord("k", "1"), create_only=True)

    with pytest.raises(AlreadyExists, match="'k' already exists"):
        variables.put("acme", VariableRecord("k", "2"), create_only=True)
    assert variables.get("acme", "k") == VariableRecord("k", "1")


def test_update(variables: VariableStore) -> None:
    with pytest.raises(NotFound, match="'k' not found"):
        variables.put("acme", VariableRecord("k", "1"), create_only=False)

    variables.put("acme", VariableRecord("k", "1"), create_only=True)
    variables.put("acme", VariableRecord("k", "2", "new"), create_only=False)

    assert variables.get("acme", "k") == VariableRecord("k", "2", "new")


def test_delete(variables: VariableStore) -> None:
    variables.put("acme", VariableRecord("k", "1"), create_only=True)

    assert variables.delete("acme", "k") is True
    assert variables.delete("acme", "k") is False
    assert variables.get("acme", "k") is None


def test_tenants_are_isolated(variables: VariableStore) -> None:
    variables.put("a", VariableRecord("k", "for-a"), create_only=True)
    variables.put("ab", VariableRecord("j", "for-ab"), create_only=True)

    assert variables.get("b", "k") is None
    assert variables.list("a") == ([VariableRecord("k", "for-a")], None)
    assert variables.list("b") == ([], None)


def test_list_pages(variables: VariableStore, counter: CallCounter) -> None:
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        variables.put("acme", VariableRecord(key, f"v-{key}"), create_only=True)
    variables.put("other", VariableRecord("intruder", "x"), create_only=True)

    seen: list[VariableRecord] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = variables.list("acme", limit=2, next_token=token)
        assert len(page) <= 2
        seen.extend(page)
        pages += 1
        if token is None:
            break

    assert sorted(r.key for r in seen) == keys
    assert all(r.value == f"v-{r.key}" for r in seen)
    assert pages == 3


@pytest.mark.parametrize("bad", ["", "a/b", "a b", "k$", "x" * 251])
def test_invalid_keys_are_rejected_clearly(variables: VariableStore, bad: str) -> None:
    with pytest.raises(InvalidKey, match="variable key"):
        variables.put("acme", VariableRecord(bad, "v"), create_only=True)


def test_dots_dashes_and_underscores_are_fine(variables: VariableStore) -> None:
    variables.put("acme", VariableRecord("a.b-c_D9", "v"), create_only=True)

    assert variables.get("acme", "a.b-c_D9") == VariableRecord("a.b-c_D9", "v")


def test_too_large_is_refused_before_the_call(variables: VariableStore) -> None:
    with pytest.raises(InvalidValue, match="too large"):
        variables.put("acme", VariableRecord("big", "x" * 5000), create_only=True)


def test_hand_written_parameter_reads_as_plain_value(
    variables: VariableStore, ssm_client: Any
) -> None:
    ssm_client.put_parameter(
        Name=f"/{PREFIX}/acme/variables/raw", Value="plain", Type="SecureString"
    )

    assert variables.get("acme", "raw") == VariableRecord("raw", "plain")
