"""Variables in SSM Parameter Store, one ``SecureString`` per variable.

Named ``/<prefix>/<tenant>/variables/<key>``: SecureString is encrypted at rest
with the account's default KMS key at no charge (standard tier), and a path
per tenant lets IAM scope a worker and lets a listing read one tenant only.
The parameter holds ``{"value": str, "description": str | null}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from chalicelib.secrets.connection_store import error_code
from chalicelib.secrets.errors import AlreadyExists, BackendError, InvalidValue, NotFound
from chalicelib.secrets.settings import validate_key, variable_parameter_name, variables_path

MAX_PAGE = 10  # GetParametersByPath's MaxResults ceiling
MAX_STORED_BYTES = 4096  # standard-tier parameter size; advanced tier costs money


@dataclass(frozen=True)
class VariableRecord:
    """A stored variable: Airflow's key, value (always text) and description."""

    key: str
    value: str
    description: str | None = None

    def to_json(self) -> str:
        return json.dumps({"value": self.value, "description": self.description})

    @classmethod
    def from_json(cls, key: str, text: str) -> VariableRecord:
        try:
            body = json.loads(text)
            return cls(key=key, value=str(body["value"]), description=body.get("description"))
        except (ValueError, KeyError, TypeError, AttributeError):
            # Written by hand in the console: take the parameter as the value.
            return cls(key=key, value=text)


class VariableStore:
    """CRUD and paged listing of variables, per tenant.

    ``client`` is a boto3 SSM client (``wiring.client("ssm")``); ``prefix`` is
    ``SecretsSettings().prefix``.
    """

    def __init__(self, client: Any, prefix: str):
        self.client = client
        self.prefix = prefix.strip("/")

    def parameter_name(self, tenant: str, key: str) -> str:
        validate_key("tenant", tenant)
        validate_key("variable key", key)
        return variable_parameter_name(self.prefix, tenant, key)

    def get(self, tenant: str, key: str) -> VariableRecord | None:
        name = self.parameter_name(tenant, key)
        try:
            response = self.client.get_parameter(Name=name, WithDecryption=True)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise BackendError(f"cannot read parameter {name}: {error_code(exc)}") from None
        return VariableRecord.from_json(key, response["Parameter"]["Value"])

    def put(self, tenant: str, variable: VariableRecord, *, create_only: bool) -> None:
        """Create (``AlreadyExists`` if taken) or replace (``NotFound`` if absent).

        SSM has no conditional overwrite, so replace checks first: a delete
        landing between the check and the write is undone by the write.
        """
        name = self.parameter_name(tenant, variable.key)
        body = variable.to_json()
        if len(body.encode()) > MAX_STORED_BYTES:
            raise InvalidValue(
                f"variable {variable.key!r} is too large: value and description must fit "
                f"in {MAX_STORED_BYTES} bytes of JSON"
            )
        if not create_only and not self._exists(name):
            raise NotFound(f"variable {variable.key!r} not found")
        try:
            self.client.put_parameter(
                Name=name,
                Value=body,
                Type="SecureString",
                Overwrite=not create_only,
            )
        except ClientError as exc:
            if create_only and error_code(exc) == "ParameterAlreadyExists":
                raise AlreadyExists(f"variable {variable.key!r} already exists") from None
            raise BackendError(f"cannot write parameter {name}: {error_code(exc)}") from None

    def _exists(self, name: str) -> bool:
        try:
            self.client.get_parameter(Name=name, WithDecryption=False)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return False
            raise BackendError(f"cannot read parameter {name}: {error_code(exc)}") from None
        return True

    def delete(self, tenant: str, key: str) -> bool:
        name = self.parameter_name(tenant, key)
        try:
            self.client.delete_parameter(Name=name)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return False
            raise BackendError(f"cannot delete parameter {name}: {error_code(exc)}") from None
        return True

    def list(
        self, tenant: str, limit: int = 10, next_token: str | None = None
    ) -> tuple[list[VariableRecord], str | None]:
        """One page (at most 10, SSM's ceiling) and the token for the next, None at the end."""
        validate_key("tenant", tenant)
        path = variables_path(self.prefix, tenant)
        request: dict[str, Any] = {
            "Path": path,
            "Recursive": False,
            "WithDecryption": True,
            "MaxResults": max(1, min(limit, MAX_PAGE)),
        }
        if next_token:
            request["NextToken"] = next_token
        response = self.client.get_parameters_by_path(**request)
        records = [
            VariableRecord.from_json(p["Name"][len(path) + 1 :], p["Value"])
            for p in response.get("Parameters", [])
        ]
        return records, response.get("NextToken") or None
