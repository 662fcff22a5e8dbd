"""Connections and variables: Airflow's ``BaseHook.get_connection`` / ``Variable.get`` state.

Adapters: ``ConnectionStore`` (Secrets Manager) and ``VariableStore`` (SSM
Parameter Store) for the API, ``lookup`` for DAG code (environment first,
then a cached read of the store), ``secret_masker`` for logs. See
docs/connections.md.

Only pure modules are imported here, so ``from chalicelib.secrets import
Connection`` loads no AWS library; import the stores from their modules.
"""

from chalicelib.secrets.connection import Connection
from chalicelib.secrets.errors import (
    AlreadyExists,
    BackendError,
    ConnectionNotFound,
    InvalidKey,
    InvalidValue,
    NotFound,
    SecretsError,
    VariableNotFound,
)
from chalicelib.secrets.settings import SecretsSettings

__all__ = [
    "AlreadyExists",
    "BackendError",
    "Connection",
    "ConnectionNotFound",
    "InvalidKey",
    "InvalidValue",
    "NotFound",
    "SecretsError",
    "SecretsSettings",
    "VariableNotFound",
]
