"""AWS credentials for one tenant's task code: ``TaskCodeRole`` assumed with the
session tag ``tenant=<tenant>``.

In isolated mode the worker runs a try's user code in a child interpreter whose
only AWS credentials are the ones this module hands out. ``TaskCodeRole``
(infra/stack.yaml) scopes every grant by ``${aws:PrincipalTag/tenant}``: the
tenant's own connections, variables and ``tenants/<tenant>/`` scratch prefix,
and nothing of Slipstream's own state, which the trusted parent keeps behind
the worker's role. So IAM, not convention, keeps one tenant's code out of
another's data (docs/security.md, "Tenants").

Credentials are cached per tenant: a warm worker runs many tries of a tenant
and ``AssumeRole`` costs a round trip. The child cannot refresh what it was
given, so a cached set is handed out only while it still covers a whole try
(``longest_try_seconds``) with a five-minute margin; past that it is replaced.

An STS failure (throttled, unreachable, even AccessDenied from a broken
deployment) is never the user's fault: it is raised as
``TenantCredentialsUnavailable``, which ``chalicelib.aws.errors`` classifies as
an infrastructure error, so the try is retried without consuming its retries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.aws.errors import describe
from chalicelib.secrets.settings import validate_key

ROLE_ARN_VARIABLE = "SLIPSTREAM_TASK_CODE_ROLE_ARN"
TENANT_TAG = "tenant"
LAMBDA_LONGEST_TRY_SECONDS = 900
"""The worker Lambda's timeout (chalicelib/deploy/stage_wiring.py WORKER_TIMEOUT_SECONDS)."""
REFRESH_MARGIN = dt.timedelta(minutes=5)
# Lambda's and ECS's credentials are role sessions, so assuming TaskCodeRole is
# role chaining: STS refuses more than an hour. 900 s is STS's minimum.
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 3600
# RoleSessionName: 2-64 characters of [\w+=,.@-]; a tenant may also hold none
# outside it but be longer (validate_key allows 250).
_SESSION_NAME_LIMIT = 64
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")

TenantCredentials = Callable[[str], dict[str, str]]
"""``credentials(tenant)`` -> the three AWS_* variables of the child's environment."""


class TenantCredentialsUnavailable(RuntimeError):
    """STS gave no credentials for the tenant. Shaped like a 503 answer so that
    ``chalicelib.aws.errors.is_infrastructure_error`` says yes: the try is
    retried as an infrastructure failure, not charged to the task."""

    def __init__(self, tenant: str, reason: str) -> None:
        super().__init__(f"no AWS credentials for tenant {tenant!r}'s task code: {reason}")
        self.response = {
            "Error": {"Code": "TenantCredentialsUnavailable", "Message": str(self)},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        }


@dataclass(frozen=True)
class _Issued:
    variables: dict[str, str]
    expires: dt.datetime


def session_name(tenant: str) -> str:
    """A RoleSessionName CloudTrail shows for the tenant's calls: the tenant itself
    when it fits, else a readable head and a digest (two long tenants sharing a
    head still get different names)."""
    safe = _SESSION_NAME_UNSAFE.sub("_", tenant)
    name = f"tenant-{safe}"
    if len(name) <= _SESSION_NAME_LIMIT:
        return name
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:16]
    head = name[: _SESSION_NAME_LIMIT - len(digest) - 1]
    return f"{head}-{digest}"


class StsTenantCredentials:
    """``credentials(tenant)``: TaskCodeRole's credentials for that tenant, cached.

    Thread-safe: the lock is held across ``AssumeRole`` so that concurrent tries
    of one tenant share one call (a worker runs one try at a time, a container
    perhaps a few; the wait is one STS round trip).
    """

    def __init__(
        self,
        role_arn: str,
        sts_client: Any,
        clock: Callable[[], dt.datetime],
        *,
        longest_try_seconds: int = LAMBDA_LONGEST_TRY_SECONDS,
        duration_seconds: int = MAX_SESSION_SECONDS,
    ) -> None:
        if not role_arn.startswith("arn:") or ":role/" not in role_arn:
            raise ValueError(f"{ROLE_ARN_VARIABLE}={role_arn!r} is not an IAM role ARN")
        if not MIN_SESSION_SECONDS <= duration_seconds <= MAX_SESSION_SECONDS:
            raise ValueError(
                f"session duration {duration_seconds} s is outside STS's "
                f"{MIN_SESSION_SECONDS}-{MAX_SESSION_SECONDS} s for a chained role"
            )
        self._cover = dt.timedelta(seconds=longest_try_seconds) + REFRESH_MARGIN
        if self._cover > dt.timedelta(seconds=duration_seconds):
            raise ValueError(
                f"a {duration_seconds} s session cannot cover a {longest_try_seconds} s try "
                f"plus the {int(REFRESH_MARGIN.total_seconds())} s refresh margin: tries "
                "that long need credentials refreshed while they run"
            )
        self.role_arn = role_arn
        self._sts = sts_client
        self._clock = clock
        self._duration = duration_seconds
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def __call__(self, tenant: str) -> dict[str, str]:
        # Refused before any call: the tenant becomes an IAM session tag and a
        # resource path segment, so it must be a plain name.
        validate_key("tenant", tenant)
        with self._lock:
            issued = self._issued.get(tenant)
            if issued is None or issued.expires - self._clock() < self._cover:
                issued = self._assume(tenant)
                self._issued[tenant] = issued
            return dict(issued.variables)

    def _assume(self, tenant: str) -> _Issued:
        try:
            answer = self._sts.assume_role(
                RoleArn=self.role_arn,
                RoleSessionName=session_name(tenant),
                DurationSeconds=self._duration,
                # Not transitive: the session may assume nothing anyway, and
                # no chained session should carry the tag further.
                Tags=[{"Key": TENANT_TAG, "Value": tenant}],
            )
        except Exception as exc:
            raise TenantCredentialsUnavailable(tenant, describe(exc)) from exc
        try:
            credentials = answer["Credentials"]
            variables = {
                "AWS_ACCESS_KEY_ID": str(credentials["AccessKeyId"]),
                "AWS_SECRET_ACCESS_KEY": str(credentials["SecretAccessKey"]),
                "AWS_SESSION_TOKEN": str(credentials["SessionToken"]),
            }
            expires = _aware(credentials["Expiration"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TenantCredentialsUnavailable(tenant, f"unexpected STS answer ({exc})") from exc
        return _Issued(variables, expires)


def _aware(value: Any) -> dt.datetime:
    """botocore parses ``Expiration`` to an aware datetime; a string is parsed too."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, dt.datetime):
        raise TypeError(f"Expiration is {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def task_credentials_from_environment(
    clock: Callable[[], dt.datetime] | None = None,
    *,
    longest_try_seconds: int = LAMBDA_LONGEST_TRY_SECONDS,
) -> TenantCredentials | None:
    """The stage's ``credentials(tenant)``, or None when the stage has no
    ``TaskCodeRole`` wired (``SLIPSTREAM_TASK_CODE_ROLE_ARN`` unset): then there
    is no isolated mode to offer."""
    role_arn = os.environ.get(ROLE_ARN_VARIABLE, "").strip()
    if not role_arn:
        return None
    from chalicelib.aws.retries import boto3_client
    from chalicelib.store.settings import StoreSettings

    settings = StoreSettings()
    sts = boto3_client("sts", region=settings.region, endpoint_url=settings.endpoint_url)
    return StsTenantCredentials(
        role_arn,
        sts,
        clock or (lambda: dt.datetime.now(dt.UTC)),
        longest_try_seconds=longest_try_seconds,
    )
