"""StsTenantCredentials: TaskCodeRole assumed per tenant on moto's STS, with the
tenant as the only session tag, cached while it still covers a whole try."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.aws.errors import is_infrastructure_error
from chalicelib.runtime.tenant_credentials import (
    StsTenantCredentials,
    TenantCredentialsUnavailable,
    session_name,
    task_credentials_from_environment,
)
from chalicelib.secrets.errors import InvalidKey

ROLE_ARN = "arn:aws:iam::123456789012:role/slipstream/dev/slipstream-dev-infra-TaskCodeRole-X"
VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


class RecordingSts:
    """moto's STS client, with each AssumeRole's parameters kept."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def assume_role(self, **params: Any) -> Any:
        self.calls.append(params)
        return self.client.assume_role(**params)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def sts() -> Iterator[RecordingSts]:
    with mock_aws():
        yield RecordingSts(boto3.client("sts", region_name="us-east-1"))


def test_the_tenant_is_the_only_session_tag_and_not_transitive(sts: RecordingSts) -> None:
    credentials = StsTenantCredentials(ROLE_ARN, sts, Clock())
    variables = credentials("acme")
    assert set(variables) == VARIABLES and all(variables.values())
    (call,) = sts.calls
    assert call["RoleArn"] == ROLE_ARN
    assert call["Tags"] == [{"Key": "tenant", "Value": "acme"}]
    assert "TransitiveTagKeys" not in call
    assert call["RoleSessionName"] == "tenant-acme"
    assert call["DurationSeconds"] == 3600


def test_a_tenant_reuses_its_credentials_and_another_gets_its_own(sts: RecordingSts) -> None:
    credentials = StsTenantCredentials(ROLE_ARN, sts, Clock())
    first = credentials("acme")
    assert credentials("acme") == first
    other = credentials("globex")
    assert other["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]
    assert [c["Tags"][0]["Value"] for c in sts.calls] == ["acme", "globex"]


def test_credentials_are_replaced_once_they_no_longer_cover_a_whole_try(
    sts: RecordingSts,
) -> None:
    clock = Clock()
    credentials = StsTenantCredentials(ROLE_ARN, sts, clock, longest_try_seconds=900)
    first = credentials("acme")
    # a one-hour session covers a 900 s try plus 5 minutes until 20 minutes before expiry
    clock.now += dt.timedelta(minutes=39)
    assert credentials("acme") == first and len(sts.calls) == 1
    clock.now += dt.timedelta(minutes=2)
    renewed = credentials("acme")
    assert len(sts.calls) == 2
    assert renewed["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]


def test_a_bad_tenant_is_refused_before_any_call(sts: RecordingSts) -> None:
    credentials = StsTenantCredentials(ROLE_ARN, sts, Clock())
    for tenant in ("", "acme/../globex", "a*", "x" * 251):
        with pytest.raises(InvalidKey):
            credentials(tenant)
    assert sts.calls == []


def test_session_names_fit_sts_and_stay_distinct() -> None:
    long_a, long_b = "a" * 100 + "x", "a" * 100 + "y"
    for tenant in ("default", long_a, long_b, "t.e_s-t"):
        name = session_name(tenant)
        assert 2 <= len(name) <= 64
    assert session_name(long_a) != session_name(long_b)


def test_sessions_that_cannot_cover_a_try_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="cannot cover"):
        StsTenantCredentials(ROLE_ARN, object(), Clock(), longest_try_seconds=3500)
    with pytest.raises(ValueError, match="outside"):
        StsTenantCredentials(ROLE_ARN, object(), Clock(), duration_seconds=7200)
    with pytest.raises(ValueError, match="not an IAM role"):
        StsTenantCredentials("slipstream-task-code", object(), Clock())


class FailingSts:
    def __init__(self, code: str) -> None:
        self.code = code

    def assume_role(self, **params: Any) -> Any:
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "AssumeRole")


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling", "RegionDisabledException"])
def test_sts_failures_are_infrastructure_failures(code: str) -> None:
    credentials = StsTenantCredentials(ROLE_ARN, FailingSts(code), Clock())
    with pytest.raises(TenantCredentialsUnavailable, match="tenant 'acme'") as raised:
        credentials("acme")
    assert is_infrastructure_error(raised.value)
    assert code in str(raised.value)


def test_concurrent_tries_of_one_tenant_share_one_assume(sts: RecordingSts) -> None:
    credentials = StsTenantCredentials(ROLE_ARN, sts, Clock())
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(credentials("acme")["AWS_ACCESS_KEY_ID"]))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and len(seen) == 8
    assert len(sts.calls) == 1


def test_from_environment_is_none_without_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIPSTREAM_TASK_CODE_ROLE_ARN", raising=False)
    assert task_credentials_from_environment() is None
    monkeypatch.setenv("SLIPSTREAM_TASK_CODE_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        credentials = task_credentials_from_environment()
        assert isinstance(credentials, StsTenantCredentials)
        assert credentials.role_arn == ROLE_ARN
        assert set(credentials("acme")) == VARIABLES


def test_the_worker_runs_user_code_isolated_exactly_when_the_stage_has_a_task_code_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wiring: SLIPSTREAM_TASK_CODE_ROLE_ARN (the stack's TaskCodeRoleArn output)
    turns on the child-interpreter path with STS credentials per tenant."""
    from chalicelib import wiring

    monkeypatch.setenv("SLIPSTREAM_STAGE", "isolated")
    monkeypatch.setenv("SLIPSTREAM_BUCKET", "slipstream-isolated")
    monkeypatch.setenv("SLIPSTREAM_QUEUE_NAME", "slipstream-isolated-scheduler")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SLIPSTREAM_QUEUE_URL", raising=False)
    monkeypatch.delenv("SLIPSTREAM_TASK_CODE_ROLE_ARN", raising=False)
    with mock_aws():
        from chalicelib.local.stack import create_resources

        wiring.reset()
        create_resources()
        assert wiring.build_worker_deps().task_credentials is None
        role = "arn:aws:iam::123456789012:role/slipstream/isolated/slipstream-isolated-task-code"
        monkeypatch.setenv("SLIPSTREAM_TASK_CODE_ROLE_ARN", role)
        wiring.reset()
        credentials = wiring.build_worker_deps().task_credentials
        assert isinstance(credentials, StsTenantCredentials)
        assert credentials.role_arn == role
    wiring.reset()
