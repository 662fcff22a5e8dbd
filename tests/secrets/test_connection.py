"""Airflow's URI and JSON forms of a connection, without AWS."""

from __future__ import annotations

import json

import pytest

from chalicelib.secrets import Connection, InvalidValue


def test_uri_fields_are_unquoted() -> None:
    conn = Connection.from_uri(
        "pg", "postgres://us%40er:p%40ss%2Fw%3Ard@db.example.com:5432/my%20db?sslmode=require"
    )

    assert conn.conn_type == "postgres"
    assert (conn.login, conn.password) == ("us@er", "p@ss/w:rd")
    assert (conn.host, conn.port, conn.schema) == ("db.example.com", 5432, "my db")
    assert conn.extra_dejson == {"sslmode": "require"}


def test_get_uri_quotes_and_round_trips() -> None:
    conn = Connection(
        conn_id="c",
        conn_type="google_cloud_platform",
        host="h.example",
        login="a b",
        password="p@:/?#",
        schema="s/x",
        port=8080,
        extra='{"k": "v w"}',
    )

    uri = conn.get_uri()

    assert uri.startswith("google-cloud-platform://a%20b:p%40%3A%2F%3F%23@h.example:8080/s%2Fx?")
    assert Connection.from_uri("c", uri) == conn


def test_scheme_hyphens_become_underscores_and_postgresql_is_postgres() -> None:
    assert Connection.from_uri("a", "aws-xyz://").conn_type == "aws_xyz"
    assert Connection.from_uri("a", "postgresql://h").conn_type == "postgres"


def test_nested_extra_travels_as_extra_query_parameter() -> None:
    conn = Connection(conn_id="a", conn_type="http", host="h", extra={"k": {"n": 1}})

    uri = conn.get_uri()

    assert "__extra__=" in uri
    assert Connection.from_uri("a", uri).extra_dejson == {"k": {"n": 1}}


def test_host_with_protocol() -> None:
    conn = Connection.from_uri("h", "http://https%3A%2F%2Fapi.example.com")
    alternative = Connection.from_uri("h", "http://https://api.example.com/v1")

    assert conn.host == "https://api.example.com"
    assert (alternative.host, alternative.schema) == ("https://api.example.com", "v1")


def test_port_only_uri_round_trips() -> None:
    conn = Connection(conn_id="p", conn_type="tcp", port=9000)

    assert Connection.from_uri("p", conn.get_uri()).port == 9000


def test_json_form_accepts_extra_object_and_string_port() -> None:
    conn = Connection.from_json(
        "j", json.dumps({"conn_type": "my-type", "host": "h", "port": "80", "extra": {"x": 1}})
    )

    assert (conn.conn_type, conn.port, conn.extra_dejson) == ("my_type", 80, {"x": 1})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1]", "JSON must be an object"),
        ("{nope", "not valid JSON"),
        ('{"port": "eighty"}', "expected an integer port"),
        ('{"hots": "typo"}', "unknown fields ['hots']"),
    ],
)
def test_bad_json_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(InvalidValue, match=words.replace("[", r"\[").replace("]", r"\]")):
        Connection.from_json("j", text)


def test_env_value_json_or_uri() -> None:
    assert Connection.from_env_value("a", ' {"host": "h"}').host == "h"
    assert Connection.from_env_value("a", "http://h").host == "h"


def test_stored_json_round_trips() -> None:
    conn = Connection(conn_id="a", conn_type="http", password="pw", description="d", extra="{}")

    assert Connection.from_json("a", conn.to_json()) == conn


def test_repr_hides_password_and_extra() -> None:
    conn = Connection(conn_id="a", password="hunter22", extra='{"token": "tok-123"}')

    assert "hunter22" not in repr(conn)
    assert "tok-123" not in repr(conn)


def test_bad_extra_is_an_empty_dict() -> None:
    assert Connection(conn_id="a", extra="not json").extra_dejson == {}


def test_schema_can_be_set_like_airflow() -> None:
    conn = Connection(conn_id="a")
    conn.schema = "sales"

    assert (conn.schema, conn.model_dump(by_alias=True)["schema"]) == ("sales", "sales")


def test_public_dict_has_no_secret() -> None:
    conn = Connection(
        conn_id="a",
        host="h",
        password="pw-12345",
        extra='{"region": "eu", "auth": {"api_key": "k-12345"}, "token": ""}',
    )

    public = conn.public_dict()

    assert "pw-12345" not in json.dumps(public) and "k-12345" not in json.dumps(public)
    assert public["password_set"] is True and "password" not in public
    assert json.loads(public["extra"]) == {"region": "eu", "auth": {"api_key": "***"}, "token": ""}


def test_public_dict_hides_an_extra_it_cannot_inspect() -> None:
    assert Connection(conn_id="a", extra="token=abc-123").public_dict()["extra"] == "***"
