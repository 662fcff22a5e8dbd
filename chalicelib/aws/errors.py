"""Which failures are the environment's (AWS throttled, answered 5xx, the
network dropped) and which are a bug or the user's code.

The distinction decides how a failure is reported (one log line, or a
traceback) and who pays for it: an infrastructure failure inside a task's try
must not consume the user's retries. Duck-typed on botocore's and pynamodb's
error shapes so that modules which never load an AWS library can ask too.
"""

from __future__ import annotations

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "ThrottlingError",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSInternalException",
    }
)
CONFLICT_CODES = frozenset(
    {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "TransactionConflictException",
    }
)
_CONNECTION_ERRORS = (
    "ConnectionError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyConnectionError",
    "HTTPClientError",
)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of ``exc`` or of an error it was raised from."""
    for error in _chain(exc):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        code = getattr(error, "cause_response_code", None)  # pynamodb
        if code:
            return str(code)
    return None


def status_code(exc: BaseException) -> int | None:
    for error in _chain(exc):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(status, int):
                return status
    return None


def is_infrastructure_error(exc: BaseException) -> bool:
    """Throttling, a 5xx, a dropped connection: worth retrying later, and no
    fault of the code that made the call."""
    for error in _chain(exc):
        names = {cls.__name__ for cls in type(error).__mro__}
        if names & set(_CONNECTION_ERRORS):
            return True
    code = error_code(exc)
    if code in THROTTLING_CODES or code in TRANSIENT_CODES:
        return True
    status = status_code(exc)
    return status is not None and status >= 500


def is_expected_aws_error(exc: BaseException) -> bool:
    """An AWS error a healthy system meets now and then (an infrastructure error,
    or a lost conditional write): log it in one line, without a traceback."""
    return is_infrastructure_error(exc) or error_code(exc) in CONFLICT_CODES


def describe(exc: BaseException) -> str:
    """``Type (Code): message`` in one line, for a log."""
    code = error_code(exc)
    text = " ".join(str(exc).split())
    head = type(exc).__name__ + (f" ({code})" if code else "")
    return f"{head}: {text}" if text else head


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
