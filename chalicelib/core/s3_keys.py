"""The S3 keys a sensor waits for, and whether a created object is one of them.

Matching follows S3KeySensor's own: an exact key, an fnmatch pattern
(``wildcard_match``, case-sensitive) or a regular expression matched from the
key's start (``use_regex``, as ``re.match``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Literal

KeyMatch = Literal["exact", "glob", "regex"]
KEY_MATCHES: tuple[KeyMatch, ...] = ("exact", "glob", "regex")


@dataclass(frozen=True)
class KeyPattern:
    bucket: str
    key: str
    match: KeyMatch = "exact"

    def __post_init__(self) -> None:
        if self.match not in KEY_MATCHES:
            raise ValueError(f"key match must be one of {', '.join(KEY_MATCHES)}: {self.match!r}")
        if not self.bucket:
            raise ValueError("a key pattern needs a bucket")

    def matches(self, bucket: str, key: str) -> bool:
        if bucket != self.bucket:
            return False
        if self.match == "exact":
            return key == self.key
        if self.match == "glob":
            return fnmatch.fnmatchcase(key, self.key)
        try:
            return re.match(self.key, key) is not None
        except re.error:
            return False

    def to_json(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key, "match": self.match}

    @classmethod
    def from_json(cls, data: Any) -> KeyPattern:
        return cls(
            bucket=str(data["bucket"]), key=str(data["key"]), match=data.get("match", "exact")
        )
