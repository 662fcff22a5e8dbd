"""The one retry policy of every boto3 client and pynamodb connection.

Throttling and 5xx answers are normal at scale; botocore's ``standard`` mode
retries them (and connection errors) with capped exponential backoff and full
jitter, and its retry quota stops a client from hammering a service that is
down. Attempts are bounded so that a handler fails within its Lambda timeout
and at-least-once delivery (the queue, the tick) takes over from there.

Set once here; ``SLIPSTREAM_AWS_RETRY_MODE`` (standard or adaptive) and
``SLIPSTREAM_AWS_MAX_ATTEMPTS`` override it per deployment.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 5
"""Total attempts of one call (the first and 4 retries): botocore's standard
backoff waits at most 1, 2, 4, 8 s between them (full jitter), about 15 s in
the worst case, well inside the 60 s Lambda timeout."""

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30


def retry_mode() -> str:
    mode = os.environ.get("SLIPSTREAM_AWS_RETRY_MODE", DEFAULT_MODE).strip().lower()
    if mode not in ("standard", "adaptive"):
        raise ValueError(f"SLIPSTREAM_AWS_RETRY_MODE must be standard or adaptive, not {mode!r}")
    return mode


def max_attempts() -> int:
    value = int(os.environ.get("SLIPSTREAM_AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    if value < 1:
        raise ValueError("SLIPSTREAM_AWS_MAX_ATTEMPTS must be at least 1")
    return value


def retry_settings() -> dict[str, Any]:
    """botocore's ``retries`` option (also pynamodb's ``retry_configuration``)."""
    return {"mode": retry_mode(), "total_max_attempts": max_attempts()}


def client_config() -> Any:
    """The botocore Config every boto3 client is built with."""
    from botocore.config import Config

    return Config(
        retries=retry_settings(),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


def pynamodb_retry_attempts() -> int:
    """pynamodb's ``max_retry_attempts``: retries after the first attempt. Its
    default (LEGACY) retry configuration turns this into botocore's standard
    mode with ``1 + max_retry_attempts`` total attempts, which is this policy."""
    return max_attempts() - 1


def boto3_client(service: str, *, region: str | None, endpoint_url: str | None) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(
        service, region_name=region, endpoint_url=endpoint_url, config=client_config()
    )
