"""How DAG code finds a connection or variable: local files, environment, then the store.

Airflow's order: a configured secrets backend first (here: the variables and
connections files given to ``dags test`` / ``dag.test()``, see
``local_files``), then an ``AIRFLOW_CONN_<ID>`` / ``AIRFLOW_VAR_<KEY>``
environment variable, so a laptop or a test needs no AWS at all; otherwise the
tenant's secret or parameter is read through the installed backend. The
backend is built only when first needed, so importing the SDK (or a DAG file)
never loads boto3.

The tenant is the running try's: ``tenant_scope`` sets it around a try and
``current_tenant`` defaults to ``"default"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from chalicelib.secrets import local_files, secret_masker
from chalicelib.secrets.connection import Connection
from chalicelib.secrets.errors import ConnectionNotFound, InvalidKey, VariableNotFound

T = TypeVar("T")

DEFAULT_TENANT = "default"

current_tenant: contextvars.ContextVar[str] = contextvars.ContextVar(
    "slipstream_tenant", default=DEFAULT_TENANT
)


@contextlib.contextmanager
def tenant_scope(tenant: str | None) -> Iterator[str]:
    """Run the block as ``tenant`` (None keeps the current one); restores on exit."""
    if tenant is None:
        yield current_tenant.get()
        return
    token = current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        current_tenant.reset(token)


class SecretsBackend(Protocol):
    """Where connections and variables are read from after the environment."""

    def connection_location(self, tenant: str, conn_id: str) -> str:
        """Human words for where the connection would be, for not-found messages."""
        ...

    def read_connection(self, tenant: str, conn_id: str) -> Connection | None: ...

    def variable_location(self, tenant: str, key: str) -> str: ...

    def read_variable(self, tenant: str, key: str) -> str | None: ...


_lock = threading.Lock()
_backend: SecretsBackend | None = None


def install_backend(backend: SecretsBackend | None) -> None:
    """Use ``backend`` from now on (tests, the local stack); None rebuilds the default lazily."""
    global _backend
    with _lock:
        _backend = backend


def get_backend() -> SecretsBackend:
    global _backend
    with _lock:
        if _backend is None:
            # Imported here: the cached backend loads boto3 and powertools.
            from chalicelib.secrets.cached import build_default_backend

            _backend = build_default_backend()
        return _backend


def connection_env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def variable_env_var(key: str) -> str:
    return f"AIRFLOW_VAR_{key.upper()}"


NO_STORE = "no store (no AWS credentials here, so a local test reads only files and environment)"


def _from_store(
    layers: list[local_files.LocalSecrets],
    read: Callable[[SecretsBackend, str], tuple[T | None, str]],
) -> tuple[T | None, str]:
    """``read`` on the tenant's store, unless a local test said there is none to read."""
    if any(not layer.use_store for layer in layers):
        return None, NO_STORE
    try:
        return read(get_backend(), current_tenant.get())
    except InvalidKey as exc:
        return None, f"no store ({exc})"


def get_connection(conn_id: str) -> Connection:
    """The connection DAG code asked for, its secrets registered with the masker."""
    env_name = connection_env_var(conn_id)
    raw = os.environ.get(env_name)
    layers = local_files.active_layers()
    from_file = next(
        (lay.connections[conn_id] for lay in layers if conn_id in lay.connections), None
    )
    if from_file is not None:
        conn = from_file
    elif raw:
        conn = Connection.from_env_value(conn_id, raw)
    else:
        found, where = _from_store(
            layers,
            lambda backend, tenant: (
                backend.read_connection(tenant, conn_id),
                backend.connection_location(tenant, conn_id),
            ),
        )
        if found is None:
            files = "".join(
                f"file {lay.connections_file}, " for lay in layers if lay.connections_file
            )
            raise ConnectionNotFound(
                f"connection {conn_id!r} not found: looked in {files}environment variable "
                f"{env_name} and {where}"
            )
        conn = found
    secret_masker.register_connection(conn)
    return conn


def get_variable(key: str) -> str:
    """The variable's text value, registered with the masker if its key is sensitive."""
    env_name = variable_env_var(key)
    layers = local_files.active_layers()
    value = next((lay.variables[key] for lay in layers if key in lay.variables), None)
    if value is None:
        value = os.environ.get(env_name)
    if value is None:
        value, where = _from_store(
            layers,
            lambda backend, tenant: (
                backend.read_variable(tenant, key),
                backend.variable_location(tenant, key),
            ),
        )
        if value is None:
            files = "".join(f"file {lay.variables_file}, " for lay in layers if lay.variables_file)
            raise VariableNotFound(
                f"variable {key!r} not found: looked in {files}environment variable {env_name} "
                f"and {where}"
            )
    secret_masker.register_variable(key, value)
    return value


def get_variable_json(key: str) -> Any:
    return json.loads(get_variable(key))
