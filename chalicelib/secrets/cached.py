"""The worker's read path: Secrets Manager and SSM through powertools, cached.

A warm Lambda runs many tries; powertools' providers keep each value for
``max_age`` seconds so a task reading a connection in a loop, or many tries
on one worker, cost one AWS call per value per ``max_age``. A miss is not
cached (powertools caches only values), so a connection created after a miss
is seen at once. A value changed in the store is seen after at most ``max_age``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from chalicelib.secrets.connection import Connection
from chalicelib.secrets.errors import BackendError
from chalicelib.secrets.settings import SecretsSettings
from chalicelib.secrets.variable_store import VariableRecord

_NOT_FOUND = {"ResourceNotFoundException", "ParameterNotFound"}


def _is_not_found(exc: BaseException) -> bool:
    """Powertools wraps the ClientError in GetParameterError; the code is on the original."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            message = str(response.get("Error", {}).get("Message", ""))
            if code in _NOT_FOUND:
                return True
            if code == "InvalidRequestException" and "deletion" in message:
                return True
        seen = seen.__cause__ or seen.__context__
    return False


class CachedStoreBackend:
    """``SecretsBackend`` over the same names as ConnectionStore and VariableStore."""

    def __init__(self, secrets_client: Any, ssm_client: Any, prefix: str, *, max_age: int):
        # Imported inside the stores' naming so a rename cannot drift apart.
        from chalicelib.secrets.connection_store import ConnectionStore
        from chalicelib.secrets.variable_store import VariableStore

        self._names = ConnectionStore(None, prefix), VariableStore(None, prefix)
        self.max_age = max_age
        self.secrets = SecretsProvider(boto3_client=secrets_client)
        self.ssm = SSMProvider(boto3_client=ssm_client)

    def connection_location(self, tenant: str, conn_id: str) -> str:
        return f"Secrets Manager secret {self._names[0].secret_name(tenant, conn_id)}"

    def variable_location(self, tenant: str, key: str) -> str:
        return f"SSM parameter {self._names[1].parameter_name(tenant, key)}"

    def read_connection(self, tenant: str, conn_id: str) -> Connection | None:
        name = self._names[0].secret_name(tenant, conn_id)
        try:
            text = self.secrets.get(name, max_age=self.max_age)
        except GetParameterError as exc:
            if _is_not_found(exc):
                return None
            raise BackendError(f"cannot read Secrets Manager secret {name}") from None
        if isinstance(text, bytes):
            text = text.decode()
        return Connection.from_json(conn_id, str(text))

    def read_variable(self, tenant: str, key: str) -> str | None:
        name = self._names[1].parameter_name(tenant, key)
        try:
            text = self.ssm.get(name, decrypt=True, max_age=self.max_age)
        except GetParameterError as exc:
            if _is_not_found(exc):
                return None
            raise BackendError(f"cannot read SSM parameter {name}") from None
        return VariableRecord.from_json(key, str(text)).value

    def clear_cache(self) -> None:
        self.secrets.clear_cache()
        self.ssm.clear_cache()


def build_default_backend(settings: SecretsSettings | None = None) -> CachedStoreBackend:
    """The backend from the environment: the same region and endpoint as ``wiring.client``."""
    from chalicelib.aws.retries import boto3_client

    settings = settings or SecretsSettings()
    options = {"region": settings.region, "endpoint_url": settings.endpoint_url}
    return CachedStoreBackend(
        boto3_client("secretsmanager", **options),
        boto3_client("ssm", **options),
        settings.prefix,
        max_age=settings.cache_seconds,
    )
