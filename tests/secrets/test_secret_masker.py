"""What counts as secret, and how it is hidden."""

from __future__ import annotations

import logging

import pytest

from chalicelib.secrets import Connection, lookup, secret_masker
from chalicelib.secrets.cached import CachedStoreBackend
from chalicelib.secrets.variable_store import VariableRecord, VariableStore


def test_mask_replaces_every_registered_value_longest_first() -> None:
    secret_masker.add("abcdef")
    secret_masker.add("abcdefgh")

    assert secret_masker.mask("x abcdefgh y abcdef z") == "x *** y *** z"


def test_short_values_are_not_masked() -> None:
    secret_masker.add("abc")

    assert secret_masker.mask("abc") == "abc"


def test_url_quoted_form_is_masked_too() -> None:
    secret_masker.add("p@ss/word")

    assert secret_masker.mask("pg://u:p%40ss%2Fword@h") == "pg://u:***@h"


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("api_key", True),
        ("github_token", True),
        ("keyfile_dict", True),
        ("client_secret", True),
        ("host", False),
        ("region", False),
    ],
)
def test_sensitive_names_follow_airflow(name: str, sensitive: bool) -> None:
    assert secret_masker.is_sensitive_name(name) is sensitive


def test_connection_password_and_sensitive_extras_are_registered() -> None:
    conn = Connection(
        conn_id="c",
        host="visible-host",
        password="the-password",
        extra='{"api_key": "key-12345", "region": "eu-west-1", "nested": {"token": "tok-999"}}',
    )

    secret_masker.register_connection(conn)

    assert secret_masker.registered() >= {"the-password", "key-12345", "tok-999"}
    assert "eu-west-1" not in secret_masker.registered()
    assert "visible-host" not in secret_masker.registered()


def test_connections_read_by_dag_code_are_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://u:env-password@h/db")

    lookup.get_connection("pg")

    assert secret_masker.mask("pw=env-password") == "pw=***"


def test_sensitive_variables_are_registered_and_others_not(
    variables: VariableStore, backend: CachedStoreBackend
) -> None:
    variables.put("default", VariableRecord("slack_token", "xoxb-123456"), create_only=True)
    variables.put("default", VariableRecord("bucket", "my-bucket"), create_only=True)
    variables.put(
        "default",
        VariableRecord("cfg", '{"password": "json-pw-1", "user": "bob-the"}'),
        create_only=True,
    )

    for key in ("slack_token", "bucket", "cfg"):
        lookup.get_variable(key)

    assert secret_masker.mask("xoxb-123456 my-bucket json-pw-1 bob-the") == (
        "*** my-bucket *** bob-the"
    )


def test_logging_filter_masks_message_args_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_masker.add("hunter2-pw")
    log = logging.getLogger("tests.masked")
    log.addFilter(secret_masker.MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="tests.masked"):
            log.info("connecting with %s", "hunter2-pw")
            try:
                raise ValueError("bad password hunter2-pw")
            except ValueError:
                log.exception("failed")
    finally:
        log.filters.clear()

    assert "hunter2-pw" not in caplog.text
    assert "connecting with ***" in caplog.text
    assert "bad password ***" in caplog.text
