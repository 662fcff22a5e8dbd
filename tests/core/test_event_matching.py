"""EventBridge pattern semantics for routing events to DAG triggers."""

from __future__ import annotations

import pytest

from chalicelib.core.event_matching import matches
from chalicelib.core.events import EventPattern, S3Event

S3_PUT = {
    "id": "e-1",
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {"bucket": {"name": "landing"}, "object": {"key": "raw/2024/orders.csv", "size": 10}},
}


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (S3Event("landing"), True),
        (S3Event("other"), False),
        (S3Event("landing", prefix="raw/"), True),
        (S3Event("landing", prefix="clean/"), False),
        (S3Event("landing", suffix=".csv"), True),
        (S3Event("landing", suffix=".json"), False),
        (S3Event("landing", prefix="raw/", suffix=".csv"), True),
        (S3Event("landing", prefix="raw/", suffix=".parquet"), False),
    ],
)
def test_s3_triggers(trigger: S3Event, expected: bool) -> None:
    assert matches(trigger.event_pattern(), S3_PUT) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.s3", "orders"]}, True),
        ({"source": ["orders"]}, False),
        ({"detail": {"object": {"size": [{"numeric": [">", 5, "<=", 10]}]}}}, True),
        ({"detail": {"object": {"size": [{"numeric": [">", 10]}]}}}, False),
        ({"detail": {"object": {"key": [{"anything-but": {"prefix": "tmp/"}}]}}}, True),
        ({"detail": {"object": {"key": [{"anything-but": ["raw/2024/orders.csv"]}]}}}, False),
        ({"detail": {"object": {"etag": [{"exists": False}]}}}, True),
        ({"detail": {"object": {"etag": [{"exists": True}]}}}, False),
        ({"detail": {"object": {"key": [{"wildcard": "raw/*/orders.*"}]}}}, True),
        ({"detail": {"missing": ["x"]}}, False),
        ({"detail-type": [{"equals-ignore-case": "object created"}]}, True),
    ],
)
def test_pattern_matchers(pattern: dict, expected: bool) -> None:
    assert matches(pattern, S3_PUT) is expected


def test_arrays_match_when_any_element_does() -> None:
    event = {"detail": {"tags": ["nightly", "orders"]}}
    assert matches({"detail": {"tags": ["orders"]}}, event)
    assert not matches({"detail": {"tags": ["weekly"]}}, event)


def test_custom_event_pattern_and_unsupported_matcher() -> None:
    trigger = EventPattern({"source": ["shop.orders"], "detail-type": ["OrderPlaced"]})
    event = {"source": "shop.orders", "detail-type": "OrderPlaced", "detail": {}}
    assert matches(trigger.event_pattern(), event)
    with pytest.raises(ValueError, match="unsupported"):
        matches({"source": [{"cidr": "10.0.0.0/8"}]}, {"source": "x"})
