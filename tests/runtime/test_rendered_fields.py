"""What a try keeps of its rendered template fields: JSON-able values, secrets
masked (registered values, and anything under a sensitive name), each field
bounded as Airflow's max_templated_field_length, and the whole bounded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.runtime.rendered_fields import (
    MAX_FIELD_CHARS,
    MAX_TOTAL_CHARS,
    OVER_TOTAL,
    TRUNCATED,
    rendered_fields_json,
    rendered_fields_of,
)
from chalicelib.secrets import secret_masker


class Op:
    def __init__(self, fields: tuple[str, ...], **values: Any):
        self.template_fields = fields
        for name, value in values.items():
            setattr(self, name, value)


class Stamp:
    """An object a template field may hold: kept as its str(), as Airflow shows it."""

    def __str__(self) -> str:
        return "W!"


@pytest.fixture(autouse=True)
def _secrets() -> Iterator[None]:
    secret_masker.add("hunter2-secret")
    yield
    secret_masker.clear(["hunter2-secret"])


def test_values_become_json_with_secrets_masked() -> None:
    op = Op(
        ("sql", "params_", "headers", "empty"),
        sql="select 'hunter2-secret' from t",
        params_={"limit": 3, "tags": ("a", "b"), "when": Stamp()},
        headers={"Authorization": "Bearer xyz", "Accept": "json"},
        empty=None,
    )
    kept = rendered_fields_of(rendered_fields_json(op))
    assert kept == {
        "sql": "select '***' from t",
        "params_": {"limit": 3, "tags": ["a", "b"], "when": "W!"},
        "headers": {"Authorization": "***", "Accept": "json"},
        "empty": None,
    }


def test_a_long_field_is_cut_and_the_total_is_bounded() -> None:
    op = Op(("a", "b", "c"), a="x" * 10_000, b="y" * 4000, c="z" * 4000)
    text = rendered_fields_json(op)
    assert text is not None and len(text) <= MAX_TOTAL_CHARS + 200
    kept = json.loads(text)
    assert kept["a"].startswith(TRUNCATED) and len(kept["a"]) == MAX_FIELD_CHARS
    assert kept["b"] == "y" * 4000
    assert kept["c"] == OVER_TOTAL


def test_no_template_fields_keeps_nothing() -> None:
    assert rendered_fields_json(Op(())) is None
    assert rendered_fields_of(None) == {} and rendered_fields_of("not json") == {}
