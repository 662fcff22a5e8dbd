"""S3 operators: copy an object, create one from data, delete keys or a prefix.

Names, arguments and templated fields are those of Airflow's amazon provider
(``airflow.providers.amazon.aws.operators.s3``). Each returns None, as there.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.sdk.exceptions import TaskFailed
from operators.aws_base import AWS_TEMPLATE_FIELDS, AwsBaseOperator
from operators.hooks.s3 import S3Hook, S3HookError, bucket_and_key

_task_log = logging.getLogger("slipstream.task")


class S3CopyObjectOperator(AwsBaseOperator):
    """Copy one object server-side; keys are relative to the bucket names or s3:// URLs."""

    template_fields = (
        "source_bucket_key",
        "dest_bucket_key",
        "source_bucket_name",
        "dest_bucket_name",
        *AWS_TEMPLATE_FIELDS,
    )
    aws_hook_class = S3Hook

    def __init__(
        self,
        *,
        source_bucket_key: str,
        dest_bucket_key: str,
        source_bucket_name: str | None = None,
        dest_bucket_name: str | None = None,
        source_version_id: str | None = None,
        acl_policy: str | None = None,
        meta_data_directive: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.source_bucket_key = source_bucket_key
        self.dest_bucket_key = dest_bucket_key
        self.source_bucket_name = source_bucket_name
        self.dest_bucket_name = dest_bucket_name
        self.source_version_id = source_version_id
        self.acl_policy = acl_policy
        self.meta_data_directive = meta_data_directive

    def execute(self, context: Mapping[str, Any]) -> None:
        hook: Any = self.hook
        try:
            hook.copy_object(
                self.source_bucket_key,
                self.dest_bucket_key,
                self.source_bucket_name,
                self.dest_bucket_name,
                self.source_version_id,
                self.acl_policy,
                self.meta_data_directive,
            )
        except S3HookError as exc:
            raise TaskFailed(f"{self.task_id}: {exc}") from exc


class S3CreateObjectOperator(AwsBaseOperator):
    """Write ``data`` (str or bytes) to a key; an existing key fails unless ``replace``."""

    template_fields = ("s3_bucket", "s3_key", "data", *AWS_TEMPLATE_FIELDS)
    aws_hook_class = S3Hook

    def __init__(
        self,
        *,
        s3_bucket: str | None = None,
        s3_key: str,
        data: str | bytes,
        replace: bool = False,
        encrypt: bool = False,
        acl_policy: str | None = None,
        encoding: str | None = None,
        compression: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.data = data
        self.replace = replace
        self.encrypt = encrypt
        self.acl_policy = acl_policy
        self.encoding = encoding
        self.compression = compression

    def execute(self, context: Mapping[str, Any]) -> None:
        hook: Any = self.hook
        try:
            bucket, key = bucket_and_key(self.s3_key, self.s3_bucket)
            if isinstance(self.data, str):
                hook.load_string(
                    self.data,
                    key,
                    bucket,
                    self.replace,
                    self.encrypt,
                    self.encoding,
                    self.acl_policy,
                    self.compression,
                )
            else:
                hook.load_bytes(self.data, key, bucket, self.replace, self.encrypt, self.acl_policy)
        except S3HookError as exc:
            raise TaskFailed(f"{self.task_id}: {exc}") from exc
        _task_log.info("wrote s3://%s/%s", bucket, key)


class S3DeleteObjectsOperator(AwsBaseOperator):
    """Delete ``keys``, or every key under ``prefix`` (optionally last modified in a window).

    Exactly one of ``keys`` and (``prefix``/``from_datetime``/``to_datetime``) is
    given, as Airflow requires; an empty ``keys`` list deletes nothing.
    """

    template_fields = (
        "keys",
        "bucket",
        "prefix",
        "from_datetime",
        "to_datetime",
        *AWS_TEMPLATE_FIELDS,
    )
    aws_hook_class = S3Hook

    def __init__(
        self,
        *,
        bucket: str,
        keys: str | Sequence[str] | None = None,
        prefix: str | None = None,
        from_datetime: dt.datetime | str | None = None,
        to_datetime: dt.datetime | str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        by_listing = not (prefix is None and from_datetime is None and to_datetime is None)
        if (keys is None) == (not by_listing):
            raise ValueError(
                f"S3DeleteObjectsOperator (task_id: {self.task_id!r}): give either keys or "
                "prefix/from_datetime/to_datetime, not both and not neither"
            )
        self.bucket = bucket
        self.keys = keys
        self.prefix = prefix
        self.from_datetime = from_datetime
        self.to_datetime = to_datetime

    def execute(self, context: Mapping[str, Any]) -> None:
        if isinstance(self.keys, (list, tuple, str)) and not self.keys:
            _task_log.info("no keys to delete")
            return
        hook: Any = self.hook
        try:
            if self.keys is not None:
                keys = [self.keys] if isinstance(self.keys, str) else list(self.keys)
            else:
                keys = hook.list_keys(
                    self.bucket,
                    prefix=self.prefix or "",
                    from_datetime=_instant(self.from_datetime),
                    to_datetime=_instant(self.to_datetime),
                )
            if keys:
                hook.delete_objects(self.bucket, keys)
        except S3HookError as exc:
            raise TaskFailed(f"{self.task_id}: {exc}") from exc
        _task_log.info("deleted %d key(s) from %s", len(keys), self.bucket)


def _instant(value: dt.datetime | str | None) -> dt.datetime | None:
    """A rendered template gives text: parse it (ISO 8601), and read naive as UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
