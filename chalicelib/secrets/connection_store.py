"""Connections in AWS Secrets Manager: one secret per connection.

Named ``<prefix>/<tenant>/connections/<conn_id>`` so that an IAM policy on
``<prefix>/<tenant>/*`` is all a tenant's worker needs, and a listing is a
name-prefix query that never reads another tenant's secrets. The secret holds
the Airflow fields as JSON (``Connection.to_json``).

Nothing here logs a secret value: errors name the secret, never its content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from chalicelib.secrets.connection import Connection
from chalicelib.secrets.errors import AlreadyExists, BackendError, NotFound
from chalicelib.secrets.settings import (
    connection_secret_name,
    connections_prefix,
    validate_key,
)

MAX_PAGE = 100  # ListSecrets' MaxResults ceiling
_BATCH = 20  # BatchGetSecretValue's SecretIdList ceiling

_GONE = ("ResourceNotFoundException",)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _marked_for_deletion(exc: ClientError) -> bool:
    # A secret deleted with a recovery window answers InvalidRequestException.
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) == "InvalidRequestException" and "deletion" in message


class ConnectionStore:
    """CRUD and paged listing of one deployment's connections, per tenant.

    ``client`` is a boto3 Secrets Manager client (``wiring.client("secretsmanager")``);
    ``prefix`` is ``SecretsSettings().prefix``.
    """

    def __init__(self, client: Any, prefix: str):
        self.client = client
        self.prefix = prefix.strip("/")

    def secret_name(self, tenant: str, conn_id: str) -> str:
        validate_key("tenant", tenant)
        validate_key("conn_id", conn_id)
        return connection_secret_name(self.prefix, tenant, conn_id)

    def get(self, tenant: str, conn_id: str) -> Connection | None:
        """The connection, or None if this tenant has none by that id."""
        name = self.secret_name(tenant, conn_id)
        try:
            response = self.client.get_secret_value(SecretId=name)
        except ClientError as exc:
            if error_code(exc) in _GONE or _marked_for_deletion(exc):
                return None
            raise BackendError(f"cannot read secret {name}: {error_code(exc)}") from None
        return Connection.from_json(conn_id, response["SecretString"])

    def put(self, tenant: str, conn: Connection, *, create_only: bool) -> None:
        """Create (``create_only=True``) or replace an existing connection.

        Create raises ``AlreadyExists`` if the id is taken; replace raises
        ``NotFound`` if it is not. Both are single Secrets Manager calls, so
        two API callers racing cannot both win a create.
        """
        name = self.secret_name(tenant, conn.conn_id)
        body = conn.to_json()
        try:
            if create_only:
                self.client.create_secret(
                    Name=name,
                    SecretString=body,
                    Description=f"Slipstream connection {conn.conn_id} of tenant {tenant}",
                    Tags=[
                        {"Key": "slipstream:tenant", "Value": tenant},
                        {"Key": "slipstream:kind", "Value": "connection"},
                    ],
                )
            else:
                self.client.put_secret_value(SecretId=name, SecretString=body)
        except ClientError as exc:
            code = error_code(exc)
            if create_only and code == "ResourceExistsException":
                raise AlreadyExists(f"connection {conn.conn_id!r} already exists") from None
            if not create_only and (code in _GONE or _marked_for_deletion(exc)):
                raise NotFound(f"connection {conn.conn_id!r} not found") from None
            raise BackendError(f"cannot write secret {name}: {code}") from None

    def delete(self, tenant: str, conn_id: str) -> bool:
        """Delete at once (no recovery window, so the id can be created again); False if absent.

        A forced delete of a missing secret succeeds in Secrets Manager, so
        absence is checked first; a concurrent delete between the two calls
        makes both callers see True.
        """
        name = self.secret_name(tenant, conn_id)
        try:
            self.client.describe_secret(SecretId=name)
            self.client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return False
            raise BackendError(f"cannot delete secret {name}: {error_code(exc)}") from None
        return True

    def list(
        self, tenant: str, limit: int = 50, next_token: str | None = None
    ) -> tuple[list[Connection], str | None]:
        """One page of the tenant's connections and the token for the next (None at the end).

        ``ListSecrets`` with a name-prefix filter finds the page, then
        ``BatchGetSecretValue`` reads the values 20 at a time. A page may be
        shorter than ``limit`` even when more follow: go on while a token comes back.
        """
        validate_key("tenant", tenant)
        prefix = connections_prefix(self.prefix, tenant)
        request: dict[str, Any] = {
            "Filters": [{"Key": "name", "Values": [prefix]}],
            "MaxResults": max(1, min(limit, MAX_PAGE)),
        }
        if next_token:
            request["NextToken"] = next_token
        response = self.client.list_secrets(**request)
        # AWS's name filter is a case-insensitive prefix match ("Acme" would
        # match "acme"), so filter again exactly: another tenant's secret must
        # never come back. A page can therefore be shorter than ``limit``.
        names = [
            entry["Name"]
            for entry in response.get("SecretList", [])
            if entry["Name"].startswith(prefix) and "/" not in entry["Name"][len(prefix) :]
        ]
        connections = [
            Connection.from_json(name[len(prefix) :], text)
            for name, text in sorted(self._read_many(names).items())
        ]
        return connections, response.get("NextToken") or None

    def _read_many(self, names: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(names), _BATCH):
            chunk = names[start : start + _BATCH]
            response = self.client.batch_get_secret_value(SecretIdList=chunk)
            for value in response.get("SecretValues", []):
                found[value["Name"]] = value["SecretString"]
        # A secret deleted between the listing and the read is simply not listed.
        return found
