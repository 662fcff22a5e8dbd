"""Errors of the connection and variable stores.

The API layer maps them to HTTP codes (``AlreadyExists`` -> 409, ``NotFound``
-> 404, ``InvalidKey`` / ``InvalidValue`` -> 400), so each is a distinct type
rather than a message to parse.
"""

from __future__ import annotations

from chalicelib.core.errors import SlipstreamError


class SecretsError(SlipstreamError):
    """Base of every error raised by ``chalicelib.secrets``."""


class AlreadyExists(SecretsError):
    """A create found the connection or variable already there."""


class NotFound(SecretsError):
    """An update, or a lookup that must succeed, found nothing.

    Also Airflow's ``AirflowNotFoundException`` for DAG code.
    """


class ConnectionNotFound(NotFound):
    """``BaseHook.get_connection`` found the conn_id in no place it looked."""


class VariableNotFound(NotFound, KeyError):
    """``Variable.get`` found the key nowhere; a KeyError as in Airflow."""

    def __str__(self) -> str:
        # KeyError.__str__ would quote the whole message.
        return str(self.args[0]) if self.args else ""


class InvalidKey(SecretsError, ValueError):
    """A conn_id, variable key or tenant that Airflow or the AWS naming rules reject."""


class InvalidValue(SecretsError, ValueError):
    """A value the store cannot hold (malformed, or over the service's size limit)."""


class BackendError(SecretsError):
    """The store could not be read for a reason other than the item being absent."""
