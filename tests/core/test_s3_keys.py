"""The keys an S3KeySensor waits for, matched as the sensor itself matches them."""

from __future__ import annotations

import pytest

from chalicelib.core.s3_keys import KeyPattern


@pytest.mark.parametrize(
    ("pattern", "bucket", "key", "expected"),
    [
        (KeyPattern("b", "in/a.csv"), "b", "in/a.csv", True),
        (KeyPattern("b", "in/a.csv"), "b", "in/a.csv.tmp", False),
        (KeyPattern("b", "in/a.csv"), "other", "in/a.csv", False),
        (KeyPattern("b", "in/*.csv", "glob"), "b", "in/2024/x.csv", True),
        (KeyPattern("b", "in/*.csv", "glob"), "b", "in/x.CSV", False),  # case-sensitive
        (KeyPattern("b", r"in/\d+\.csv", "regex"), "b", "in/42.csv", True),
        # re.match: from the key's start
        (KeyPattern("b", r"\d+\.csv", "regex"), "b", "in/42.csv", False),
        (KeyPattern("b", "in/(", "regex"), "b", "in/(", False),  # a broken regex matches nothing
    ],
)
def test_key_patterns_match_as_the_sensor_does(
    pattern: KeyPattern, bucket: str, key: str, expected: bool
) -> None:
    assert pattern.matches(bucket, key) is expected


def test_patterns_round_trip_and_refuse_unknown_kinds() -> None:
    pattern = KeyPattern("b", "k/*", "glob")
    assert KeyPattern.from_json(pattern.to_json()) == pattern
    with pytest.raises(ValueError, match="key match"):
        KeyPattern("b", "k", "fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bucket"):
        KeyPattern("", "k")
