"""``Variable``: Airflow's key/value settings read from DAG code.

``Variable.get("key")`` reads ``AIRFLOW_VAR_KEY`` first, then the running
try's tenant's store (SSM Parameter Store). A missing key raises a
``KeyError`` subclass naming every place looked, unless ``default_var`` is given.
Importing this module loads no AWS library.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.secrets import lookup
from chalicelib.secrets.errors import VariableNotFound


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()


class Variable:
    """Read-only from DAG code: variables are managed through the API."""

    @classmethod
    def get(cls, key: str, default_var: Any = NOTSET, deserialize_json: bool = False) -> Any:
        """The value as text, or decoded JSON with ``deserialize_json=True``."""
        try:
            value = lookup.get_variable(key)
        except VariableNotFound:
            if default_var is not NOTSET:
                return default_var
            raise
        return json.loads(value) if deserialize_json else value
