"""Dumping and loading what each AWS service of the local stack holds, through
its public API (moto has no persistence of its own, and its internals change
between versions; its API does not).

Each ``dump_*`` writes files under a snapshot folder and returns how many
things it wrote; each ``load_*`` reads them back into a fresh moto. Items and
values are kept exactly (DynamoDB items as raw attribute values), so nothing
goes through the store's models and no field can be lost in a translation.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

BATCH_WRITE = 25  # BatchWriteItem's ceiling
LOG_BATCH = 1000  # events per PutLogEvents, well under its 1 MB


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync: the folder is renamed into place only when all of it is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def write_lines(path: Path, rows: Iterable[Any]) -> int:
    count = 0
    lines = []
    for row in rows:
        lines.append(json.dumps(row, separators=(",", ":")))
        count += 1
    write_file(path, ("\n".join(lines) + "\n" if lines else "").encode())
    return count


def read_lines(path: Path) -> Iterator[Any]:
    with open(path, encoding="utf-8") as rows:
        for line in rows:
            if line.strip():
                yield json.loads(line)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ------------------------------------------------------------------ DynamoDB


def key_schema(dynamodb: Any, table: str) -> list[dict[str, str]]:
    """The table's key schema, sorted: what must match for items to fit a fresh table."""
    keys = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    return sorted(keys, key=lambda k: k["KeyType"])


def _encode(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value as JSON: binary values (bytes from boto3) as base64."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "M":
        return {"M": {k: _encode(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_encode(v) for v in inner]}
    return {kind: inner}


def _decode(value: dict[str, Any]) -> dict[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "M":
        return {"M": {k: _decode(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_decode(v) for v in inner]}
    return {kind: inner}


def _scan(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    args: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**args)
        for item in page.get("Items", []):
            yield {name: _encode(value) for name, value in item.items()}
        if "LastEvaluatedKey" not in page:
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def dump_table(dynamodb: Any, table: str, folder: Path) -> int:
    return write_lines(folder / "dynamodb" / f"{table}.jsonl", _scan(dynamodb, table))


def load_table(dynamodb: Any, table: str, folder: Path) -> int:
    """Batch writes into the (fresh, empty) table; unprocessed items are written again."""
    count = 0
    batch: list[dict[str, Any]] = []
    for row in read_lines(folder / "dynamodb" / f"{table}.jsonl"):
        batch.append({"PutRequest": {"Item": {k: _decode(v) for k, v in row.items()}}})
        count += 1
        if len(batch) == BATCH_WRITE:
            _write_batch(dynamodb, table, batch)
            batch = []
    if batch:
        _write_batch(dynamodb, table, batch)
    return count


def _write_batch(dynamodb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: requests}
    while pending:
        pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


# ------------------------------------------------------------------------ S3


def dump_buckets(s3: Any, folder: Path) -> int:
    """Every bucket's objects: bytes in blobs/, key and content type in objects.jsonl."""

    def objects() -> Iterator[dict[str, Any]]:
        number = 0
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            yield {"bucket": name}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for summary in page.get("Contents", []):
                    got = s3.get_object(Bucket=name, Key=summary["Key"])
                    number += 1
                    write_file(folder / "s3" / "blobs" / str(number), got["Body"].read())
                    yield {
                        "bucket": name,
                        "key": summary["Key"],
                        "blob": str(number),
                        "content_type": got.get("ContentType"),
                        "metadata": got.get("Metadata") or {},
                    }

    rows = list(objects())
    write_lines(folder / "s3" / "objects.jsonl", rows)
    return sum(1 for row in rows if "key" in row)


def load_buckets(s3: Any, folder: Path) -> int:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    count = 0
    for row in read_lines(folder / "s3" / "objects.jsonl"):
        if "key" not in row:
            if row["bucket"] not in existing:
                s3.create_bucket(Bucket=row["bucket"])
                existing.add(row["bucket"])
            continue
        extra = {"ContentType": row["content_type"]} if row.get("content_type") else {}
        s3.put_object(
            Bucket=row["bucket"],
            Key=row["key"],
            Body=(folder / "s3" / "blobs" / row["blob"]).read_bytes(),
            Metadata=row.get("metadata") or {},
            **extra,
        )
        count += 1
    return count


# ---------------------------------------------------- Secrets Manager and SSM


def dump_secrets(secrets: Any, folder: Path) -> int:
    """Connections: each secret's current value, description and tags."""
    rows = []
    for page in secrets.get_paginator("list_secrets").paginate():
        for entry in page.get("SecretList", []):
            value = secrets.get_secret_value(SecretId=entry["ARN"])
            row: dict[str, Any] = {
                "name": entry["Name"],
                "description": entry.get("Description"),
                "tags": entry.get("Tags") or [],
            }
            if "SecretString" in value:
                row["string"] = value["SecretString"]
            else:
                row["binary"] = base64.b64encode(value["SecretBinary"]).decode()
            rows.append(row)
    return write_lines(folder / "secrets.jsonl", rows)


def load_secrets(secrets: Any, folder: Path) -> int:
    count = 0
    for row in read_lines(folder / "secrets.jsonl"):
        value: dict[str, Any] = (
            {"SecretString": row["string"]}
            if "string" in row
            else {"SecretBinary": base64.b64decode(row["binary"])}
        )
        extra: dict[str, Any] = {"Tags": row["tags"]} if row.get("tags") else {}
        if row.get("description"):
            extra["Description"] = row["description"]
        secrets.create_secret(Name=row["name"], **value, **extra)
        count += 1
    return count


def dump_parameters(ssm: Any, folder: Path) -> int:
    """Variables: each parameter's decrypted value, type and description."""
    described = []
    for page in ssm.get_paginator("describe_parameters").paginate():
        described.extend(page.get("Parameters", []))
    rows = []
    for start in range(0, len(described), 10):  # GetParameters takes 10 names
        chunk = described[start : start + 10]
        values = ssm.get_parameters(Names=[p["Name"] for p in chunk], WithDecryption=True)
        by_name = {p["Name"]: p["Value"] for p in values.get("Parameters", [])}
        for meta in chunk:
            if meta["Name"] in by_name:
                rows.append(
                    {
                        "name": meta["Name"],
                        "type": meta.get("Type", "String"),
                        "value": by_name[meta["Name"]],
                        "description": meta.get("Description"),
                    }
                )
    return write_lines(folder / "parameters.jsonl", rows)


def load_parameters(ssm: Any, folder: Path) -> int:
    count = 0
    for row in read_lines(folder / "parameters.jsonl"):
        extra = {"Description": row["description"]} if row.get("description") else {}
        ssm.put_parameter(
            Name=row["name"], Value=row["value"], Type=row["type"], Overwrite=True, **extra
        )
        count += 1
    return count


# ----------------------------------------------------------- CloudWatch Logs


def dump_logs(logs: Any, folder: Path) -> int:
    """Every log group's streams and their events (task logs: one stream per try)."""

    def streams() -> Iterator[dict[str, Any]]:
        for page in logs.get_paginator("describe_log_groups").paginate():
            for group in page.get("logGroups", []):
                name = group["logGroupName"]
                yield {"group": name}
                pages = logs.get_paginator("describe_log_streams").paginate(logGroupName=name)
                for streams_page in pages:
                    for stream in streams_page.get("logStreams", []):
                        events = _events(logs, name, stream["logStreamName"])
                        yield {"group": name, "stream": stream["logStreamName"], "events": events}

    rows = list(streams())
    write_lines(folder / "logs.jsonl", rows)
    return sum(len(row["events"]) for row in rows if "stream" in row)


def _events(logs: Any, group: str, stream: str) -> list[list[Any]]:
    events: list[list[Any]] = []
    args: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        page = logs.get_log_events(**args)
        got = page.get("events", [])
        events.extend([e["timestamp"], e["message"]] for e in got)
        token = page.get("nextForwardToken")
        if not got or token is None or token == args.get("nextToken"):
            return events
        args["nextToken"] = token


def load_logs(logs: Any, folder: Path) -> tuple[int, int]:
    """(events written, events CloudWatch refused: older than 14 days, as in AWS)."""
    written = refused = 0
    for row in read_lines(folder / "logs.jsonl"):
        if "stream" not in row:
            try:
                logs.create_log_group(logGroupName=row["group"])
            except ClientError as exc:
                if _code(exc) != "ResourceAlreadyExistsException":
                    raise
            continue
        logs.create_log_stream(logGroupName=row["group"], logStreamName=row["stream"])
        events = sorted(row["events"], key=lambda e: e[0])
        for start in range(0, len(events), LOG_BATCH):
            chunk = events[start : start + LOG_BATCH]
            answer = logs.put_log_events(
                logGroupName=row["group"],
                logStreamName=row["stream"],
                logEvents=[{"timestamp": t, "message": m} for t, m in chunk],
            )
            rejected = answer.get("rejectedLogEventsInfo") or {}
            kept = len(chunk)
            if "tooOldLogEventEndIndex" in rejected:
                kept -= rejected["tooOldLogEventEndIndex"] + 1
            written += kept
            refused += len(chunk) - kept
    return written, refused
