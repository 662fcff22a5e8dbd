"""``AwsBaseHook``: boto3 sessions and clients built from an Airflow-style AWS connection.

Why a hook and not ``boto3.client(...)`` in each operator: the credentials, the
region, an assumed role and a custom endpoint (moto, LocalStack, a VPC
endpoint) live in one connection that DAG code names by id, as in Airflow's
amazon provider. What is read from the connection:

- ``login`` / ``password``: access key id and secret access key (Airflow's
  convention), or ``aws_access_key_id`` / ``aws_secret_access_key`` in extra;
  ``aws_session_token`` in extra;
- extra ``region_name`` (the hook's ``region_name`` argument wins);
- extra ``role_arn``: assume that role with STS (extra ``assume_role_kwargs``
  passed on, e.g. ``ExternalId``), the session named ``slipstream-<conn_id>``;
- extra ``endpoint_url`` (or ``service_config.<service>.endpoint_url``) for
  every client the hook makes.

``aws_conn_id=None`` (or a connection id that resolves to nothing when it is
the default ``aws_default``) means boto3's default credential chain: a worker's
execution role in Lambda or ECS, environment variables locally. Airflow warns
and falls back the same way for a missing ``aws_default``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
import botocore.config

from chalicelib.sdk.exceptions import AirflowNotFoundException
from chalicelib.sdk.hooks import BaseHook
from chalicelib.secrets.connection import Connection

DEFAULT_AWS_CONN_ID = "aws_default"


class AwsBaseHook(BaseHook):
    """A boto3 session and clients for one AWS connection (``aws_conn_id``)."""

    conn_name_attr = "aws_conn_id"
    default_conn_name = DEFAULT_AWS_CONN_ID

    def __init__(
        self,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        *,
        region_name: str | None = None,
        client_type: str | None = None,
        config: botocore.config.Config | None = None,
        verify: bool | str | None = None,
    ):
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self._region_name = region_name
        self.client_type = client_type
        self.config = config
        self.verify = verify

    # -- the connection --------------------------------------------------------
    @cached_property
    def conn_config(self) -> Connection | None:
        """The AWS connection, or None for boto3's default chain."""
        if self.aws_conn_id is None:
            return None
        try:
            return self.get_connection(self.aws_conn_id)
        except AirflowNotFoundException:
            if self.aws_conn_id != DEFAULT_AWS_CONN_ID:
                raise
            self.log.info("no connection %r: using the default AWS credentials", self.aws_conn_id)
            return None

    @property
    def _extra(self) -> dict[str, Any]:
        conn = self.conn_config
        return conn.extra_dejson if conn is not None else {}

    @property
    def region_name(self) -> str | None:
        return self._region_name or self._extra.get("region_name")

    def endpoint_url(self, service: str | None = None) -> str | None:
        """A per-service ``service_config`` endpoint first, then the connection-wide one."""
        extra = self._extra
        if service:
            per_service = (extra.get("service_config") or {}).get(service) or {}
            if per_service.get("endpoint_url"):
                return str(per_service["endpoint_url"])
        url = extra.get("endpoint_url")
        return str(url) if url else None

    # -- sessions and clients ---------------------------------------------------
    def get_session(self, region_name: str | None = None) -> boto3.session.Session:
        """A session with the connection's keys, or the role it names assumed with them."""
        region = region_name or self.region_name
        conn = self.conn_config
        if conn is None:
            return boto3.session.Session(region_name=region)
        extra = conn.extra_dejson
        session = boto3.session.Session(
            aws_access_key_id=conn.login or extra.get("aws_access_key_id"),
            aws_secret_access_key=conn.password or extra.get("aws_secret_access_key"),
            aws_session_token=extra.get("aws_session_token"),
            region_name=region,
        )
        role_arn = extra.get("role_arn")
        if not role_arn:
            return session
        return self._assumed_session(session, str(role_arn), region, extra)

    def _assumed_session(
        self, base: boto3.session.Session, role_arn: str, region: str | None, extra: dict[str, Any]
    ) -> boto3.session.Session:
        """Credentials of ``role_arn``, for one session (no refresh: a try is short)."""
        sts = base.client("sts", endpoint_url=self.endpoint_url("sts"), region_name=region)
        kwargs = dict(extra.get("assume_role_kwargs") or {})
        kwargs.setdefault("RoleSessionName", f"slipstream-{self.aws_conn_id}")
        credentials = sts.assume_role(RoleArn=role_arn, **kwargs)["Credentials"]
        self.log.info("assumed role %s for connection %r", role_arn, self.aws_conn_id)
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )

    def get_client_type(
        self, client_type: str | None = None, region_name: str | None = None
    ) -> Any:
        """A boto3 client of ``client_type`` (or the hook's own) for this connection."""
        service = client_type or self.client_type
        if not service:
            raise ValueError(f"{type(self).__name__}: which AWS service? pass client_type")
        kwargs: dict[str, Any] = {"endpoint_url": self.endpoint_url(service)}
        if self.config is not None:
            kwargs["config"] = self.config
        if self.verify is not None:
            kwargs["verify"] = self.verify
        return self.get_session(region_name).client(service, **kwargs)

    @cached_property
    def conn(self) -> Any:
        """The hook's client, made once (Airflow's ``hook.conn``)."""
        return self.get_client_type()

    def get_conn(self) -> Any:
        return self.conn


class AwsGenericHook(AwsBaseHook):
    """Airflow's name for "an AwsBaseHook for one client_type"."""
