"""``conn`` and ``var`` in the template context, fetched only when a template reads them.

Airflow's accessors: ``{{ conn.my_conn.host }}``, ``{{ conn.get('id') }}``,
``{{ var.value.key }}``, ``{{ var.value.get('key', 'default') }}``,
``{{ var.json.key.field }}``. Building a context costs nothing: every try
builds one, and most templates never touch a secret, so no AWS call happens
unless a template (or task code) actually asks.
"""

from __future__ import annotations

from typing import Any

from chalicelib.secrets import lookup
from chalicelib.secrets.connection import Connection
from chalicelib.secrets.errors import ConnectionNotFound, VariableNotFound


class ConnectionAccessor:
    """``conn`` in the context: attribute access by conn_id."""

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):  # copy/pickle/jinja probing, not a conn_id
            raise AttributeError(conn_id)
        return lookup.get_connection(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        try:
            return lookup.get_connection(conn_id)
        except ConnectionNotFound:
            return default_conn

    def __repr__(self) -> str:
        return "<ConnectionAccessor (dynamic access)>"


class _VariableValues:
    def __init__(self, *, as_json: bool):
        self._as_json = as_json

    def _read(self, key: str) -> Any:
        return lookup.get_variable_json(key) if self._as_json else lookup.get_variable(key)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._read(key)

    def get(self, key: str, default_var: Any = None) -> Any:
        try:
            return self._read(key)
        except VariableNotFound:
            return default_var

    def __repr__(self) -> str:
        return f"<{'json' if self._as_json else 'value'} variable accessor (dynamic access)>"


class VariableAccessor:
    """``var`` in the context: ``var.value`` gives text, ``var.json`` decoded JSON."""

    def __init__(self) -> None:
        self.value = _VariableValues(as_json=False)
        self.json = _VariableValues(as_json=True)

    def __repr__(self) -> str:
        return "<VariableAccessor (dynamic access)>"
