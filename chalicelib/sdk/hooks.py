"""``BaseHook``: Airflow's way for operators and tasks to get a connection.

``BaseHook.get_connection("pg")`` looks in ``AIRFLOW_CONN_PG`` first, then in
the running try's tenant's store (Secrets Manager), and raises
``AirflowNotFoundException`` naming every place it looked. Importing this
module loads no AWS library: the store is built on first use.
"""

from __future__ import annotations

import logging

from chalicelib.secrets import lookup
from chalicelib.secrets.connection import Connection


class BaseHook:
    """Base of hooks: what a hook needs is a connection and a logger."""

    def __init__(self, logger_name: str | None = None):
        self._log_name = logger_name or f"slipstream.hook.{type(self).__name__}"

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(self._log_name)

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """The connection ``conn_id``; its password and secret extras are masked in logs."""
        return lookup.get_connection(conn_id)
