"""``S3Hook``: the S3 calls DAG code makes most, with Airflow's names and argument rules.

Keys may be given as full ``s3://bucket/key`` URLs with ``bucket_name=None``,
as in Airflow. Listing pages through ``list_objects_v2`` so any number of keys
works; deletes go in batches of 1,000 (S3's limit per request) and any key S3
reports as not deleted fails the call, naming the keys.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import gzip
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from operators.hooks.aws_base import AwsBaseHook

DELETE_BATCH = 1000


class S3HookError(ValueError):
    """An S3 argument was wrong or S3 refused part of a request."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> (``bucket``, ``some/key``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3a", "s3n") or not parts.netloc:
        raise S3HookError(f"not an S3 URL: {url!r} (expected s3://bucket/key)")
    return parts.netloc, parts.path.lstrip("/")


def bucket_and_key(key: str, bucket_name: str | None) -> tuple[str, str]:
    """The bucket and key an Airflow-style (key, bucket_name) pair names."""
    if bucket_name:
        if key.startswith("s3://"):
            raise S3HookError(
                f"give either a full s3:// URL or bucket_name with a relative key, "
                f"not both: {key!r} in {bucket_name!r}"
            )
        return bucket_name, key
    if key.startswith(("s3://", "s3a://", "s3n://")):
        return parse_s3_url(key)
    raise S3HookError(f"key {key!r} has no bucket: pass bucket_name or an s3://bucket/key URL")


class S3Hook(AwsBaseHook):
    """S3 through an AWS connection; ``aws_conn_id`` as for every AWS hook."""

    def __init__(self, aws_conn_id: str | None = "aws_default", **kwargs: Any):
        kwargs["client_type"] = "s3"
        super().__init__(aws_conn_id, **kwargs)

    # -- reading -----------------------------------------------------------
    def check_for_bucket(self, bucket_name: str) -> bool:
        try:
            self.conn.head_bucket(Bucket=bucket_name)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "403"):
                return False
            raise
        return True

    def head_object(self, key: str, bucket_name: str | None = None) -> dict[str, Any] | None:
        """The object's metadata, or None when there is no such key."""
        bucket, key = bucket_and_key(key, bucket_name)
        try:
            return dict(self.conn.head_object(Bucket=bucket, Key=key))
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey"):
                return None
            raise

    def check_for_key(self, key: str, bucket_name: str | None = None) -> bool:
        return self.head_object(key, bucket_name) is not None

    def check_for_prefix(self, prefix: str, delimiter: str, bucket_name: str | None = None) -> bool:
        """Whether any key starts with ``prefix`` (completed with ``delimiter``)."""
        if not prefix.endswith(delimiter):
            prefix += delimiter
        return bool(self.list_keys(bucket_name, prefix=prefix, max_items=1))

    def list_keys(
        self,
        bucket_name: str | None = None,
        prefix: str = "",
        delimiter: str = "",
        page_size: int | None = None,
        max_items: int | None = None,
        start_after_key: str = "",
        from_datetime: dt.datetime | None = None,
        to_datetime: dt.datetime | None = None,
        apply_wildcard: bool = False,
    ) -> list[str]:
        """Keys under ``prefix``; with ``apply_wildcard`` the prefix is an fnmatch pattern.

        ``from_datetime < LastModified <= to_datetime`` when given (Airflow's bounds).
        """
        if not bucket_name:
            raise S3HookError("list_keys needs bucket_name")
        pattern = prefix if apply_wildcard else None
        if pattern is not None:
            prefix = pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        paginator = self.conn.get_paginator("list_objects_v2")
        config: dict[str, Any] = {}
        if page_size:
            config["PageSize"] = page_size
        kwargs: dict[str, Any] = {"Bucket": bucket_name, "Prefix": prefix, "Delimiter": delimiter}
        if start_after_key:
            kwargs["StartAfter"] = start_after_key
        keys: list[str] = []
        for page in paginator.paginate(PaginationConfig=config, **kwargs):
            for item in page.get("Contents", []):
                if pattern is not None and not fnmatch.fnmatchcase(item["Key"], pattern):
                    continue
                modified = item.get("LastModified")
                if from_datetime is not None and modified <= from_datetime:
                    continue
                if to_datetime is not None and modified > to_datetime:
                    continue
                keys.append(item["Key"])
                if max_items is not None and len(keys) >= max_items:
                    return keys
        return keys

    def read_key(self, key: str, bucket_name: str | None = None) -> str:
        """The object's content as UTF-8 text."""
        return self.read_key_bytes(key, bucket_name).decode("utf-8")

    def read_key_bytes(self, key: str, bucket_name: str | None = None) -> bytes:
        bucket, key = bucket_and_key(key, bucket_name)
        body = self.conn.get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read())

    # -- writing -----------------------------------------------------------
    def load_string(
        self,
        string_data: str,
        key: str,
        bucket_name: str | None = None,
        replace: bool = False,
        encrypt: bool = False,
        encoding: str | None = None,
        acl_policy: str | None = None,
        compression: str | None = None,
    ) -> None:
        """Write text to ``key``; ``compression="gzip"`` gzips it first (Airflow's option)."""
        data = string_data.encode(encoding or "utf-8")
        if compression == "gzip":
            data = gzip.compress(data, mtime=0)
        elif compression is not None:
            raise S3HookError(f"compression {compression!r} is not supported (only 'gzip')")
        self.load_bytes(data, key, bucket_name, replace, encrypt, acl_policy)

    def load_bytes(
        self,
        bytes_data: bytes,
        key: str,
        bucket_name: str | None = None,
        replace: bool = False,
        encrypt: bool = False,
        acl_policy: str | None = None,
    ) -> None:
        """Write bytes to ``key``; an existing key is an error unless ``replace``."""
        bucket, key = bucket_and_key(key, bucket_name)
        if not replace and self.check_for_key(key, bucket):
            raise S3HookError(f"The key {key} already exists.")
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": bytes_data}
        if encrypt:
            kwargs["ServerSideEncryption"] = "AES256"
        if acl_policy:
            kwargs["ACL"] = acl_policy
        self.conn.put_object(**kwargs)

    def copy_object(
        self,
        source_bucket_key: str,
        dest_bucket_key: str,
        source_bucket_name: str | None = None,
        dest_bucket_name: str | None = None,
        source_version_id: str | None = None,
        acl_policy: str | None = None,
        meta_data_directive: str | None = None,
    ) -> dict[str, Any]:
        """Copy one object (server-side); keys relative to the bucket names or s3:// URLs."""
        source_bucket, source_key = bucket_and_key(source_bucket_key, source_bucket_name)
        dest_bucket, dest_key = bucket_and_key(dest_bucket_key, dest_bucket_name)
        source: dict[str, str] = {"Bucket": source_bucket, "Key": source_key}
        if source_version_id:
            source["VersionId"] = source_version_id
        kwargs: dict[str, Any] = {"Bucket": dest_bucket, "Key": dest_key, "CopySource": source}
        if acl_policy:
            kwargs["ACL"] = acl_policy
        if meta_data_directive:
            kwargs["MetadataDirective"] = meta_data_directive
        return dict(self.conn.copy_object(**kwargs))

    def delete_objects(self, bucket: str, keys: str | list[str]) -> None:
        """Delete ``keys`` in batches of 1,000; raise naming any key S3 did not delete."""
        names = [keys] if isinstance(keys, str) else list(keys)
        failed: list[str] = []
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            response = self.conn.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            failed.extend(
                f"{e['Key']} ({e.get('Code', 'error')})" for e in response.get("Errors", [])
            )
        if failed:
            raise S3HookError(f"S3 did not delete from {bucket}: {', '.join(failed)}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
