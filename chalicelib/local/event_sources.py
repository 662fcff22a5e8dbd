"""What infra/stack.yaml wires in AWS so that S3 uploads and custom events reach
the scheduler queue, played on moto for the local stack.

Two EventBridge rules with the scheduler queue as target, with the patterns
the template declares (tests/infra checks they agree): S3 "Object Created" on
the default bus, and every event of this account on the Slipstream bus
(``SLIPSTREAM_EVENT_BUS``, ``<prefix>-<stage>`` as the template names it).
And what the infra README leaves to the operator: the data buckets S3-triggered
DAGs watch exist and send their events to EventBridge. The scheduler is not
told about any of this: the events arrive as they do in AWS.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("slipstream.local")

OBJECT_CREATED_RULE = "slipstream-object-created"
CUSTOM_EVENTS_RULE = "slipstream-custom-events"
TARGET_ID = "scheduler-queue"  # the template's target id

OBJECT_CREATED_PATTERN: dict[str, list[str]] = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
}
"""infra/stack.yaml's ObjectCreatedRule (default bus)."""


def custom_events_pattern(account: str) -> dict[str, list[str]]:
    """infra/stack.yaml's CustomEventsRule (the Slipstream bus): this account's events."""
    return {"account": [account]}


def event_bus_name() -> str:
    """SLIPSTREAM_EVENT_BUS (the template's EventBusName output), else ``<prefix>-<stage>``."""
    from chalicelib import wiring

    settings = wiring.store_settings()
    return os.environ.get("SLIPSTREAM_EVENT_BUS") or f"{settings.table_prefix}-{settings.stage}"


def wire_rules(events: Any, sqs: Any, queue_url: str, bus: str) -> None:
    """The Slipstream bus and both rules, targeting the queue (idempotent)."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    account = queue_arn.split(":")[4]
    if not any(b["Name"] == bus for b in events.list_event_buses(NamePrefix=bus)["EventBuses"]):
        events.create_event_bus(Name=bus)
    for name, bus_name, pattern in (
        (OBJECT_CREATED_RULE, "default", OBJECT_CREATED_PATTERN),
        (CUSTOM_EVENTS_RULE, bus, custom_events_pattern(account)),
    ):
        events.put_rule(
            Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern), State="ENABLED"
        )
        events.put_targets(
            Rule=name, EventBusName=bus_name, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}]
        )


def watched_buckets(routes: Mapping[str, Iterable[Mapping[str, Any]]]) -> set[str]:
    """The buckets S3 triggers name, from the event routes deploy writes."""
    buckets: set[str] = set()
    for patterns in routes.values():
        for pattern in patterns:
            if "aws.s3" not in pattern.get("source", []):
                continue
            detail = pattern.get("detail")
            bucket = detail.get("bucket") if isinstance(detail, Mapping) else None
            names = bucket.get("name") if isinstance(bucket, Mapping) else None
            buckets.update(n for n in names or [] if isinstance(n, str))
    return buckets


def asset_buckets(asset_model: Any) -> set[str]:
    """The buckets of deployed ``s3://`` assets that some DAG is scheduled on:
    an upload there is an asset event (scheduler.event_router)."""
    from chalicelib.store.assets import AssetStore

    store = AssetStore(asset_model)
    buckets: set[str] = set()
    for row in store.list_assets(limit=10**9, offset=0).items:
        if row.uri.startswith("s3://") and store.references(row.id)[0]:
            buckets.add(row.uri[len("s3://") :].split("/", 1)[0])
    return buckets


def watch_bucket(s3: Any, bucket: str) -> None:
    """Create the bucket if missing and turn its EventBridge notifications on,
    keeping any other notification it has."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    config.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" in config:
        return
    config["EventBridgeConfiguration"] = {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    log.info("bucket %s sends its events to EventBridge", bucket)


def trigger_hints(endpoint: str, buckets: Iterable[str], bus: str) -> list[str]:
    """The commands that start event-triggered DAGs on this stack, for its banner."""
    aws = f"aws --endpoint-url {endpoint}"
    lines = [
        "Event triggers (moto takes any credentials):",
        "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1",
    ]
    lines += [f"  {aws} s3 cp FILE s3://{bucket}/KEY" for bucket in sorted(buckets)]
    entry = {"EventBusName": bus, "Source": "SOURCE", "DetailType": "TYPE", "Detail": "{}"}
    lines.append(f"  {aws} events put-events --entries '{json.dumps([entry])}'")
    return lines
