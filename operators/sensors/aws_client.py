"""boto3 clients for the AWS sensors, with the project's one retry policy.

Region and endpoint come from the environment the worker runs in
(``SLIPSTREAM_REGION`` / ``AWS_DEFAULT_REGION``, and ``SLIPSTREAM_ENDPOINT_URL``
for the local stack), so a sensor reads the same account its worker runs in.
``aws_conn_id`` is accepted for Airflow compatibility and not used yet: the
worker's IAM role is the credential (docs/authoring.md, Sensors).
"""

from __future__ import annotations

import os
from typing import Any

from chalicelib.aws.retries import boto3_client


def aws_client(service: str, region_name: str | None = None) -> Any:
    region = (
        region_name
        or os.environ.get("SLIPSTREAM_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    endpoint = os.environ.get("SLIPSTREAM_ENDPOINT_URL") or None
    return boto3_client(service, region=region, endpoint_url=endpoint)
