"""Airflow's Connection: the fields, its URI form and its JSON form.

Pure (no AWS import) so that DAG files, the SDK and the API models can use it
without a cloud at hand. The URI and JSON formats are the ones Airflow reads
from ``AIRFLOW_CONN_*`` environment variables, so a connection a user already
has in Airflow's format works here unchanged.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.secrets.errors import InvalidValue
from chalicelib.secrets.secret_masker import REDACTED, is_sensitive_name

log = logging.getLogger("slipstream.secrets")

# Airflow's escape hatch for an extra that is not a flat string->string mapping.
EXTRA_QUERY_KEY = "__extra__"

STORED_FIELDS = (
    "conn_type",
    "description",
    "host",
    "login",
    "password",
    "schema",
    "port",
    "extra",
)


def normalize_conn_type(conn_type: str) -> str:
    """URI schemes cannot hold ``_``, so Airflow writes them as ``-`` and maps them back."""
    if conn_type == "postgresql":
        return "postgres"
    return conn_type.replace("-", "_")


class Connection(BaseModel):
    """One connection with Airflow's field names.

    ``password`` and ``extra`` are left out of ``repr`` so that a connection
    printed in a log or a traceback does not leak them.
    """

    model_config = ConfigDict(validate_assignment=True, populate_by_name=True)

    conn_id: str
    conn_type: str | None = None
    description: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = Field(default=None, repr=False)
    # ``schema`` shadows a BaseModel attribute, hence the alias dance.
    schema_: str | None = Field(default=None, alias="schema")
    port: int | None = None
    extra: str | None = Field(default=None, repr=False)

    @field_validator("extra", mode="before")
    @classmethod
    def _extra_as_text(cls, value: Any) -> Any:
        # Airflow stores extra as JSON text; accept the decoded form too.
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    @property  # type: ignore[override]
    def schema(self) -> str | None:
        return self.schema_

    @schema.setter
    def schema(self, value: str | None) -> None:
        self.schema_ = value

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The extra as a dict; ``{}`` when absent or not a JSON object (as Airflow)."""
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except json.JSONDecodeError:
            log.error("extra of connection %r is not valid JSON", self.conn_id)
            return {}
        return value if isinstance(value, dict) else {}

    def get_password(self) -> str | None:
        return self.password

    def get_extra(self) -> str | None:
        return self.extra

    # ------------------------------------------------------------- URI form
    def get_uri(self) -> str:
        """Airflow's URI: ``conn-type://login:password@host:port/schema?extra``."""
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        host = self.host
        if host and "://" in host:
            protocol, bare = host.split("://", 1)
            if protocol == self.conn_type:
                host = bare
            else:
                uri += f"{protocol}://"
                host = bare
        userinfo = ""
        if self.login is not None:
            userinfo += quote(self.login, safe="")
        if self.password is not None:
            userinfo += ":" + quote(self.password, safe="")
        if userinfo:
            uri += userinfo + "@"
        location = quote(host, safe="") if host else ""
        if self.port:
            # "@" keeps a lone port from being read as part of the scheme.
            location += f":{self.port}" if location or userinfo else f"@:{self.port}"
        if self.schema_:
            location += "/" + quote(self.schema_, safe="")
        uri += location
        if self.extra:
            uri += ("?" if self.schema_ else "/?") + self._extra_query()
        return uri

    def _extra_query(self) -> str:
        extra = self.extra_dejson
        flat = bool(extra) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
        )
        if flat:
            query = urlencode(extra)
            if dict(parse_qsl(query, keep_blank_values=True)) == extra:
                return query
        return urlencode({EXTRA_QUERY_KEY: self.extra or ""})

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        """Parse Airflow's URI form (what ``AIRFLOW_CONN_X=postgres://...`` holds)."""
        schemes = uri.count("://")
        if schemes == 0 or schemes > 2:
            raise InvalidValue(f"connection {conn_id!r}: not a connection URI")
        scheme = urlsplit(uri).scheme
        host_has_protocol = schemes == 2
        rest = uri.replace(f"{scheme}://", "" if host_has_protocol else "//", 1)
        if host_has_protocol:
            protocol_part = rest.split("://", 1)[0]
            if "@" in protocol_part or ":" in protocol_part:
                raise InvalidValue(f"connection {conn_id!r}: malformed URI")
        parts = urlsplit(rest)
        try:
            port = parts.port
        except ValueError as exc:
            raise InvalidValue(f"connection {conn_id!r}: bad port in URI") from exc
        host = _hostname(parts)
        if host_has_protocol and host:
            host = f"{parts.scheme}://{host}"
        schema = parts.path[1:]
        extra: str | None = None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            extra = query[EXTRA_QUERY_KEY] if EXTRA_QUERY_KEY in query else json.dumps(query)
        return cls(
            conn_id=conn_id,
            conn_type=normalize_conn_type(scheme) if scheme else None,
            host=host,
            login=unquote(parts.username) if parts.username else parts.username,
            password=unquote(parts.password) if parts.password else parts.password,
            schema_=unquote(schema) if schema else schema,
            port=port,
            extra=extra,
        )

    # ------------------------------------------------------------ JSON form
    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        """Parse Airflow's JSON form: an object of the fields, ``extra`` text or object."""
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidValue(f"connection {conn_id!r}: not valid JSON ({exc.msg})") from exc
        if not isinstance(fields, dict):
            raise InvalidValue(f"connection {conn_id!r}: JSON must be an object")
        unknown = sorted(set(fields) - set(STORED_FIELDS) - {"conn_id"})
        if unknown:
            raise InvalidValue(f"connection {conn_id!r}: unknown fields {unknown}")
        fields.pop("conn_id", None)
        if fields.get("conn_type"):
            fields["conn_type"] = normalize_conn_type(fields["conn_type"])
        port = fields.pop("port", None)
        if port not in (None, ""):
            try:
                fields["port"] = int(port)
            except (TypeError, ValueError) as exc:
                raise InvalidValue(
                    f"connection {conn_id!r}: expected an integer port, got {port!r}"
                ) from exc
        if not fields.get("extra"):
            fields.pop("extra", None)
        return cls(conn_id=conn_id, **fields)

    @classmethod
    def from_env_value(cls, conn_id: str, value: str) -> Connection:
        """An ``AIRFLOW_CONN_*`` value: JSON if it looks like an object, else a URI."""
        if value.lstrip().startswith("{"):
            return cls.from_json(conn_id, value)
        return cls.from_uri(conn_id, value)

    def public_dict(self) -> dict[str, Any]:
        """The fields safe to show (API responses, the UI): no password, secret extras hidden.

        ``extra`` keeps its shape with each sensitive field's value replaced by
        ``***``, as Airflow's API does; ``password_set`` says whether one exists.
        """
        fields = {name: getattr(self, name) for name in STORED_FIELDS if name != "password"}
        fields["conn_id"] = self.conn_id
        fields["password_set"] = bool(self.password)
        if self.extra:
            try:
                decoded = json.loads(self.extra)
            except ValueError:
                decoded = None
            # Text that is not a JSON object cannot be inspected, so none of it is shown.
            fields["extra"] = (
                json.dumps(redact_sensitive(decoded)) if isinstance(decoded, dict) else REDACTED
            )
        return fields

    def to_json(self) -> str:
        """The stored form: every Airflow field but conn_id (the secret's name holds it)."""
        return json.dumps({name: getattr(self, name) for name in STORED_FIELDS})


def _hostname(parts: Any) -> str:
    """The host as written: urlsplit lowercases it and cuts it at ``/``."""
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc
        if "@" in hostname:
            hostname = hostname.rsplit("@", 1)[1]
        if ":" in hostname:
            hostname = hostname.split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


def redact_sensitive(value: Any, name: str | None = None) -> Any:
    """``value`` with every field under a sensitive name (at any depth) replaced by ``***``."""
    if name is not None and is_sensitive_name(name) and value not in (None, ""):
        return REDACTED
    if isinstance(value, dict):
        return {key: redact_sensitive(inner, str(key)) for key, inner in value.items()}
    if isinstance(value, list):
        return [redact_sensitive(inner) for inner in value]
    return value


def restore_redacted(sent: Any, stored: Any) -> Any:
    """``sent`` with each ``***`` put back to the stored value at the same place.

    An editor that read a connection got its secret extras as ``***``; sending
    that answer back (a PATCH of other fields, or of the whole object) must not
    overwrite the secrets with the mask. A ``***`` with nothing stored at its
    place stays as sent.
    """
    if sent == REDACTED and stored is not None:
        return stored
    if isinstance(sent, dict) and isinstance(stored, dict):
        return {key: restore_redacted(value, stored.get(key)) for key, value in sent.items()}
    return sent


def restore_redacted_extra(sent: str | None, stored: str | None) -> str | None:
    """``restore_redacted`` over two ``extra`` JSON texts; the whole text when it was masked."""
    if sent is None or stored is None:
        return sent
    if sent == REDACTED:
        return stored  # the stored extra was not a JSON object, so it was masked whole
    try:
        sent_value, stored_value = json.loads(sent), json.loads(stored)
    except ValueError:
        return sent
    if not isinstance(sent_value, dict) or not isinstance(stored_value, dict):
        return sent
    return json.dumps(restore_redacted(sent_value, stored_value))
