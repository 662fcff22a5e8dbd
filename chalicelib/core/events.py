"""Event triggers a DAG can declare: an S3 upload or any EventBridge pattern.

Only declared here; the runtime turns them into EventBridge rules that feed
the scheduler queue.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class S3Event(BaseModel):
    """Run the DAG when an object is created in ``bucket`` under ``prefix``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["s3"] = "s3"
    bucket: str
    prefix: str = ""
    suffix: str = ""

    def __init__(self, bucket: str | None = None, /, **data: Any):
        if bucket is not None:
            data["bucket"] = bucket
        super().__init__(**data)

    @field_validator("bucket")
    @classmethod
    def _bucket_named(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("S3Event needs a bucket name")
        return v

    def event_pattern(self) -> dict[str, Any]:
        """The EventBridge pattern S3 'Object Created' events must match."""
        key: list[Any] = []
        if self.prefix or self.suffix:
            match: dict[str, str] = {}
            if self.prefix:
                match["prefix"] = self.prefix
            if self.suffix:
                match["suffix"] = self.suffix
            key = [match] if len(match) == 1 else [{"wildcard": f"{self.prefix}*{self.suffix}"}]
        detail: dict[str, Any] = {"bucket": {"name": [self.bucket]}}
        if key:
            detail["object"] = {"key": key}
        return {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}


class EventPattern(BaseModel):
    """Run the DAG for every event on the Slipstream bus matching ``pattern``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["pattern"] = "pattern"
    pattern: dict[str, Any]

    def __init__(self, pattern: dict[str, Any] | None = None, /, **data: Any):
        if pattern is not None:
            data["pattern"] = pattern
        super().__init__(**data)

    @field_validator("pattern")
    @classmethod
    def _pattern_shape(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("EventPattern needs a non-empty pattern")
        _check_pattern(v, path="pattern")
        return v

    def event_pattern(self) -> dict[str, Any]:
        return self.pattern


def _check_pattern(node: dict[str, Any], path: str) -> None:
    """EventBridge wants every leaf of a pattern to be a list of matchers."""
    for key, value in node.items():
        where = f"{path}.{key}"
        if isinstance(value, dict):
            _check_pattern(value, where)
        elif not isinstance(value, list):
            raise ValueError(f"{where} must be a list of values or a nested object, got {value!r}")


EventTrigger = Annotated[S3Event | EventPattern, Field(discriminator="type")]
