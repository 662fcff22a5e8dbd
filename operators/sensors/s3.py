"""S3KeySensor: waits for one or more keys (or wildcard patterns) in S3."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from chalicelib.runtime.sensor_wakeups import KeyPattern, wake_on_s3
from chalicelib.sdk.sensors import BaseSensorOperator
from operators.sensors.aws_client import aws_client

log = logging.getLogger("slipstream.task")
_WILDCARD = re.compile(r"[*?\[]")


def parse_s3_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3a", "s3n") or not parts.netloc:
        raise ValueError(f"not an s3:// URL: {url!r}")
    return parts.netloc, parts.path.lstrip("/")


class S3KeySensor(BaseSensorOperator):
    """Airflow's S3KeySensor: every ``bucket_key`` must exist (with
    ``wildcard_match``, at least one object must match each pattern, fnmatch
    style; with ``use_regex``, a regular expression). A key is a full
    ``s3://bucket/key`` URL when ``bucket_name`` is not given. ``check_fn``
    receives the matched objects' metadata (``Key``, ``Size``) and decides."""

    template_fields = ("bucket_key", "bucket_name")

    def __init__(
        self,
        *,
        bucket_key: str | Sequence[str],
        bucket_name: str | None = None,
        wildcard_match: bool = False,
        check_fn: Callable[..., bool] | None = None,
        aws_conn_id: str | None = "aws_default",
        verify: str | bool | None = None,
        use_regex: bool = False,
        region_name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not bucket_key:
            raise ValueError(f"S3KeySensor (task_id: {self.task_id!r}): bucket_key is empty")
        self.bucket_key = bucket_key
        self.bucket_name = bucket_name
        self.wildcard_match = wildcard_match
        self.check_fn = check_fn
        self.aws_conn_id = aws_conn_id
        self.verify = verify
        self.use_regex = use_regex
        self.region_name = region_name

    def targets(self) -> list[tuple[str, str]]:
        """(bucket, key or pattern) for every key asked for."""
        keys = [self.bucket_key] if isinstance(self.bucket_key, str) else list(self.bucket_key)
        found: list[tuple[str, str]] = []
        for key in keys:
            if self.bucket_name is None:
                try:
                    found.append(parse_s3_url(key))
                except ValueError as exc:
                    raise ValueError(
                        f"S3KeySensor (task_id: {self.task_id!r}): without bucket_name, "
                        f"bucket_key must be a full s3:// URL ({exc})"
                    ) from None
            else:
                if key.startswith("s3://"):
                    raise ValueError(
                        f"S3KeySensor (task_id: {self.task_id!r}): give bucket_name or a full "
                        f"s3:// URL in bucket_key, not both ({key!r})"
                    )
                found.append((self.bucket_name, key))
        return found

    def poke(self, context: Mapping[str, Any]) -> bool:
        client = aws_client("s3", self.region_name)
        matched: list[dict[str, Any]] = []
        targets = self.targets()
        for bucket, key in targets:
            self.log_checking(bucket, key)
            objects = self._matches(client, bucket, key)
            if not objects:
                self._wake_on_upload(targets)
                return False
            matched.extend(objects)
        if self.check_fn is not None:
            return bool(self.check_fn(matched))
        return True

    def _wake_on_upload(self, targets: list[tuple[str, str]]) -> None:
        """Between reschedules, an upload of a key we wait for pokes again at once
        (when the bucket sends its events to EventBridge); the interval stays the
        fallback. A poke-mode sensor holds its worker and just polls."""
        if not self.reschedule:
            return
        match = "regex" if self.use_regex else "glob" if self.wildcard_match else "exact"
        if wake_on_s3([KeyPattern(bucket, key, match) for bucket, key in targets]):
            log.info("An upload matching these keys wakes this sensor before its next poke")

    def log_checking(self, bucket: str, key: str) -> None:
        log.info("Poking for key: s3://%s/%s", bucket, key)

    def _matches(self, client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
        if self.wildcard_match or self.use_regex:
            prefix = "" if self.use_regex else _WILDCARD.split(key, maxsplit=1)[0]
            pattern = re.compile(key) if self.use_regex else None
            objects: list[dict[str, Any]] = []
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    name = item["Key"]
                    hit = pattern.match(name) if pattern else fnmatch.fnmatchcase(name, key)
                    if hit:
                        objects.append({"Key": name, "Size": item.get("Size", 0)})
            return objects
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return []
            raise
        return [{"Key": key, "Size": head.get("ContentLength", 0)}]
