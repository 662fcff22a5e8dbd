"""Param ``format`` values are checked as Airflow's Param checks them.

Airflow calls ``jsonschema.validate(value, schema, format_checker=FormatChecker())``;
every value below is also put to that checker, so a rule that drifts from it fails.
"""

from __future__ import annotations

import pytest
from jsonschema import FormatChecker

from chalicelib.core.param_formats import CHECKED_FORMATS, conforms
from chalicelib.core.validation import param_value_problem

SAMPLES: dict[str, list[object]] = {
    "date": ["2024-01-31", "2024-02-29", "2023-02-29", "2024-1-3", "20240131", "2024-01-31T00:00"],
    "date-time": [
        "2024-01-31T12:00:00Z",
        "2024-01-31T12:00:00+01:00",
        "2024-01-31t12:00:00z",
        "2024-01-31T12:00:00.123456Z",
        "2024-01-31T12:00:00",
        "2024-01-31 12:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-31T24:00:00Z",
    ],
    "time": ["12:13:14", "1:2:3", "12:13", "12:13:14Z", "25:00:00", "12:13:14.5"],
    "email": ["a@b", "ab", "@", "first.last@example.com"],
    "idn-email": ["ü@b", "ab"],
    "ipv4": ["1.2.3.4", "1.2.3", "256.1.1.1", "::1"],
    "ipv6": ["::1", "fe80::1%eth0", "1.2.3.4", "2001:db8::8a2e:370:7334"],
    "uuid": [
        "12345678-1234-1234-1234-123456789abc",
        "12345678123412341234123456789abc",
        "{12345678-1234-1234-1234-123456789abc}",
        "not-a-uuid",
    ],
    "regex": ["a+", "(", "[a-z]{2,}"],
    # No checker among Airflow's dependencies: anything goes, as there.
    "uri": ["http://example.com", "not a uri"],
    "duration": ["P1D", "one day"],
    "hostname": ["example.com", "-bad-"],
}


@pytest.mark.parametrize(
    ("format_name", "value"),
    [(name, value) for name, values in SAMPLES.items() for value in values],
)
def test_each_format_agrees_with_jsonschemas_format_checker(format_name: str, value: str) -> None:
    assert conforms(value, format_name) is FormatChecker().conforms(value, format_name)


def test_the_samples_cover_every_checked_format_with_a_pass_and_a_failure() -> None:
    for name in CHECKED_FORMATS:
        results = {conforms(value, name) for value in SAMPLES[name]}
        assert results == {True, False}, name


def test_a_format_constrains_strings_only() -> None:
    assert conforms(20240131, "date") and conforms(None, "date-time")


@pytest.mark.parametrize(
    ("schema", "value", "problem"),
    [
        (
            {"type": "string", "format": "date"},
            "2024-02-30",
            "param 'p': '2024-02-30' is not a 'date'",
        ),
        ({"type": "string", "format": "email"}, "nobody", "param 'p': 'nobody' is not a 'email'"),
        ({"type": "string", "format": "date-time"}, "2024-01-31T12:00:00Z", None),
        ({"type": "string", "format": "uri"}, "anything", None),
    ],
)
def test_a_param_value_that_breaks_its_format_is_named(
    schema: dict[str, str], value: str, problem: str | None
) -> None:
    assert param_value_problem("p", value, schema) == problem
