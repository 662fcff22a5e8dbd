"""AWS errors a user causes (no credentials, a stage not created yet) as one line.

Commands that talk to AWS directly (``dags deploy`` without an API) meet
botocore and pynamodb exceptions whose tracebacks say nothing about what to
do. The expected ones become the CLI's usual ``error: ...`` line with the
setting to fix; anything else still raises, because a traceback is then the
best report there is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from chalicelib.cli.remote import EXIT_BAD_INPUT, EXIT_UNREACHABLE, fail
from chalicelib.store.settings import StoreSettings

LOCAL_HINT = "or SLIPSTREAM_ENDPOINT_URL for a local stack (slipstream dev up)"
_REFUSED_CREDENTIALS = {
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}


@contextlib.contextmanager
def aws_errors_in_one_line(settings: StoreSettings) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        described = describe(exc, settings)
        if described is None:
            raise
        message, code = described
        fail("", message, code)


def describe(exc: BaseException, settings: StoreSettings) -> tuple[str, int] | None:
    """The line and exit code for an expected AWS error anywhere in ``exc``'s chain."""
    from botocore import exceptions as boto  # type: ignore[import-untyped]

    where = f"stage {settings.stage!r} in {settings.region}"
    if settings.endpoint_url:
        where += f" at {settings.endpoint_url}"
    for cause in _chain(exc):
        if isinstance(cause, (boto.NoCredentialsError, boto.PartialCredentialsError)):
            return (
                "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, {LOCAL_HINT}",
                EXIT_BAD_INPUT,
            )
        if isinstance(cause, boto.NoRegionError):
            return f"no AWS region: set SLIPSTREAM_REGION, {LOCAL_HINT}", EXIT_BAD_INPUT
        if isinstance(cause, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
            return f"cannot reach AWS ({where}): {cause}", EXIT_UNREACHABLE
        code, text = _client_error(cause)
        if code is None:
            continue
        if code == "NoSuchBucket":
            return (
                f"bucket {settings.bucket!r} does not exist ({where}): create the stage's "
                "infra stack first (docs/deploying.md) or set SLIPSTREAM_BUCKET",
                EXIT_BAD_INPUT,
            )
        if code in ("ResourceNotFoundException", "TableNotFoundException"):
            return (
                f"the state tables of {where} do not exist ({text}): create the stage's "
                "infra stack first (docs/deploying.md) or set SLIPSTREAM_STAGE",
                EXIT_BAD_INPUT,
            )
        if code in _REFUSED_CREDENTIALS:
            return f"AWS refused the credentials ({where}): {code}: {text}", EXIT_BAD_INPUT
        return f"AWS error ({where}): {code}: {text}", EXIT_UNREACHABLE
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _client_error(exc: BaseException) -> tuple[str | None, str]:
    """(code, message) of a botocore ClientError or a pynamodb error that wraps one."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return str(error.get("Code") or "") or None, str(error.get("Message") or "")
    code = getattr(exc, "cause_response_code", None)
    if code:
        return str(code), str(getattr(exc, "cause_response_message", "") or "")
    return None, ""
