"""Asset URIs as Airflow 3 normalizes them, and when a condition is met."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.core.assets import (
    AliasRef,
    AllOf,
    AnyOf,
    AssetError,
    AssetRef,
    airflow_expression,
    asset_id,
    consumed_uris,
    describe,
    is_met,
    normalize_uri,
    waiting_for,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("s3://bucket/key", "s3://bucket/key"),
        ("S3://bucket/key/", "s3://bucket/key"),
        ("s3://bucket", "s3://bucket/"),
        ("s3://bucket/a?b=2&a=1#frag", "s3://bucket/a?a=1&b=2"),
        (
            "postgres://user:secret@host:5432/db/schema/table",
            "postgres://host:5432/db/schema/table",
        ),
        ("postgres://user@host/db", "postgres://user@host/db"),
        ("x-custom://Whatever/?b=1#keep", "x-custom://Whatever/?b=1#keep"),
        ("orders", "orders"),
        ("file:///tmp/data/", "file:///tmp/data"),
    ],
)
def test_uris_are_normalized_as_airflow_does(given: str, stored: str) -> None:
    assert normalize_uri(given) == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("airflow://dag/x", "reserved"),
        ("s3:///key", "bucket"),
        ("", "empty"),
        ("   ", "whitespace"),
        ("s3://bücket/k", "ASCII"),
        ("x" * 1501, "longer than 1500"),
    ],
)
def test_bad_uris_are_refused_with_the_reason(given: str, message: str) -> None:
    with pytest.raises(AssetError, match=message):
        normalize_uri(given)


def test_name_and_uri_default_to_each_other() -> None:
    assert AssetRef.build(uri="s3://b/k").name == "s3://b/k"
    assert AssetRef.build(name="orders").uri == "orders"
    with pytest.raises(AssetError, match="requires either"):
        AssetRef.build()
    with pytest.raises(AssetError, match="JSON"):
        AssetRef.build("s3://b/k", extra={"x": object()})


def test_asset_ids_are_stable_positive_and_exact_in_javascript() -> None:
    ids = {asset_id(f"s3://b/{i}") for i in range(1000)}
    assert len(ids) == 1000
    assert all(0 <= i < 2**53 for i in ids)
    assert asset_id("s3://b/1") == asset_id("s3://b/1")


A, B, C = (AssetRef.build(f"s3://b/{n}") for n in "abc")
ALIAS = AliasRef(name="out")


def _expected(a: bool, b: bool, c: bool) -> bool:
    return a and (b or c)


def test_a_and_b_or_c_over_every_combination() -> None:
    condition = AllOf(objects=[A, AnyOf(objects=[B, C])])
    for flags in itertools.product([False, True], repeat=3):
        queued = {ref.uri for ref, on in zip((A, B, C), flags, strict=True) if on}
        assert is_met(condition, queued) is _expected(*flags), flags


def test_nested_any_of_alls_over_every_combination() -> None:
    condition = AnyOf(objects=[AllOf(objects=[A, B]), AllOf(objects=[C, ALIAS])])
    keys = [A.uri, B.uri, C.uri, "alias:out"]
    for flags in itertools.product([False, True], repeat=4):
        queued = {k for k, on in zip(keys, flags, strict=True) if on}
        want = (flags[0] and flags[1]) or (flags[2] and flags[3])
        assert is_met(condition, queued) is want, flags


def test_empty_all_is_met_and_empty_any_is_not() -> None:
    assert is_met(AllOf(objects=[]), set()) is True
    assert is_met(AnyOf(objects=[]), {A.uri}) is False


def test_unrelated_events_do_not_count() -> None:
    assert not is_met(AllOf(objects=[A, B]), {A.uri, "s3://b/other"})


def test_waiting_for_and_descriptions() -> None:
    condition = AllOf(objects=[A, AnyOf(objects=[B, C])])
    assert waiting_for(condition, {B.uri}) == ([B.uri], [A.uri, C.uri])
    assert describe(condition) == "s3://b/a & (s3://b/b | s3://b/c)"
    assert consumed_uris(condition) == [A.uri, B.uri, C.uri]
    assert consumed_uris(None) == []
    expression = airflow_expression(condition)
    assert expression is not None
    assert expression["all"][0]["asset"]["uri"] == A.uri
    assert expression["all"][1]["any"][1]["asset"]["id"] == asset_id(C.uri)


def test_conditions_round_trip_through_json() -> None:
    condition = AllOf(objects=[A, AnyOf(objects=[B, ALIAS])])
    assert AllOf.model_validate_json(condition.model_dump_json()) == condition
