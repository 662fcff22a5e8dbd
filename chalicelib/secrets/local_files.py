"""Variables and connections from local files, in Airflow's file formats, for testing DAGs.

``slipstream dags test --variables FILE --connections FILE`` and
``dag.test(variable_file_path=..., conn_file_path=...)`` read them so a DAG is
tested with no AWS at all, from the same files an Airflow user already has:

- ``.json``: an object. Variables: ``{"key": "text", "key2": {"any": "JSON"}}``
  (a non-text value is kept as its JSON text, as ``airflow variables import``
  stores it; ``{"value": ..., "description": ...}`` is the Airflow 3 export
  form). Connections: ``{"conn_id": "uri://..."}`` or ``{"conn_id": {fields}}``
  with Airflow's fields (``conn_type, host, login, password, schema, port,
  extra, description``; or ``uri``; or ``extra_dejson`` for an extra object),
  as ``airflow connections export`` writes them.
- ``.yaml`` / ``.yml``: the same mapping in YAML.
- ``.env``: ``KEY=value`` lines (``#`` comments and blank lines skipped); a
  connection's value is a URI or a JSON object.

Precedence follows Airflow's, where a configured secrets backend (the local
filesystem one here) is searched before ``AIRFLOW_VAR_*`` / ``AIRFLOW_CONN_*``
environment variables, which come before the stored ones. The files are
process-wide while active (:func:`local_secrets`) because ``dags test`` runs
tries on a thread pool.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.errors import SlipstreamError
from chalicelib.secrets.connection import STORED_FIELDS, Connection


class LocalFileError(SlipstreamError):
    """A variables or connections file that cannot be read; the message says where."""


@dataclass(frozen=True)
class LocalSecrets:
    """What one pair of files supplies, and their paths for not-found messages."""

    variables: Mapping[str, str] = field(default_factory=dict)
    connections: Mapping[str, Connection] = field(default_factory=dict)
    variables_file: str | None = None
    connections_file: str | None = None
    use_store: bool = True


_lock = threading.Lock()
_active: list[LocalSecrets] = []


@contextlib.contextmanager
def local_secrets(
    variables_file: str | None = None,
    connections_file: str | None = None,
    *,
    use_store: bool = True,
) -> Iterator[LocalSecrets]:
    """Within the block, lookups read these files first; raises LocalFileError if one is bad.

    ``use_store=False``: nothing is read from the tenant's store (a laptop with
    no AWS credentials), so a missing name is simply missing and
    ``Variable.get(key, default_var=...)`` gives its default, as with Airflow's
    empty local metastore.
    """
    layer = LocalSecrets(
        variables=load_variables(variables_file) if variables_file else {},
        connections=load_connections(connections_file) if connections_file else {},
        variables_file=variables_file,
        connections_file=connections_file,
        use_store=use_store,
    )
    with _lock:
        _active.append(layer)
    try:
        yield layer
    finally:
        with _lock:
            _active.remove(layer)


def active_layers() -> list[LocalSecrets]:
    """The layers in force, innermost first."""
    with _lock:
        return list(reversed(_active))


# Where boto3 would find credentials or an endpoint without a network call (no IMDS probe).
_AWS_SETTINGS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "SLIPSTREAM_ENDPOINT_URL",
)


def aws_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this machine is set up to reach a store: AWS settings or ~/.aws files.

    Decided without any network call, so ``dags test`` on a laptop with no AWS
    at all never waits on a credentials probe; a Lambda or ECS task always has
    its credentials in the environment.
    """
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in _AWS_SETTINGS):
        return True
    files = (
        env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials"),
        env.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config"),
    )
    return any(os.path.isfile(path) for path in files)


# ------------------------------------------------------------------ variables
def load_variables(path: str) -> dict[str, str]:
    """Every variable of the file, as text."""
    entries = _read_mapping(path)
    variables: dict[str, str] = {}
    for key, value in entries.items():
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "description"}:
            value = value["value"]  # the Airflow 3 export form
        variables[key] = value if isinstance(value, str) else json.dumps(value)
    return variables


# ---------------------------------------------------------------- connections
def load_connections(path: str) -> dict[str, Connection]:
    """Every connection of the file; a bad one is reported with the file and its conn_id."""
    connections: dict[str, Connection] = {}
    for conn_id, value in _read_mapping(path).items():
        try:
            connections[conn_id] = _connection(conn_id, value)
        except (ValueError, SlipstreamError) as exc:
            raise LocalFileError(f"{path}: connection {conn_id!r}: {_first_line(exc)}") from None
    return connections


def _connection(conn_id: str, value: Any) -> Connection:
    if isinstance(value, str):
        return Connection.from_env_value(conn_id, value)
    if not isinstance(value, dict):
        raise ValueError(f"expected a URI or an object of fields, got {type(value).__name__}")
    fields = dict(value)
    if fields.get("conn_id", conn_id) != conn_id:
        raise ValueError(f"its conn_id field says {fields['conn_id']!r}")
    fields.pop("conn_id", None)
    if "uri" in fields:
        if set(fields) - {"uri", "description"}:
            raise ValueError("give either uri or the individual fields, not both")
        conn = Connection.from_uri(conn_id, str(fields["uri"]))
        conn.description = fields.get("description")
        return conn
    if "extra_dejson" in fields:
        if "extra" in fields:
            raise ValueError("give either extra or extra_dejson, not both")
        fields["extra"] = fields.pop("extra_dejson")
    unknown = sorted(set(fields) - set(STORED_FIELDS))
    if unknown:
        raise ValueError(f"unknown fields {unknown}")
    return Connection.from_json(conn_id, json.dumps(fields))


# ------------------------------------------------------------------- formats
def _read_mapping(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as source:
            text = source.read()
    except OSError as exc:
        raise LocalFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    extension = os.path.splitext(path)[1].lower()
    if extension == ".env":
        return _parse_env(path, text)
    if extension == ".json":
        data = _parse_json(path, text)
    elif extension in (".yaml", ".yml"):
        data = _parse_yaml(path, text)
    else:
        raise LocalFileError(f"{path}: unknown file type; use .json, .yaml, .yml or .env")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LocalFileError(f"{path}: expected a mapping of names to values at the top")
    return {str(key): value for key, value in data.items()}


def _parse_env(path: str, text: str) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise LocalFileError(f"{path}:{number}: expected KEY=value")
        key = key.strip()
        if key in entries:
            raise LocalFileError(f"{path}:{number}: {key!r} is given twice")
        entries[key] = value.strip()
    return entries


def _parse_json(path: str, text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalFileError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def _parse_yaml(path: str, text: str) -> Any:
    import yaml  # type: ignore[import-untyped]  # only YAML files need it (pyyaml, dev)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise LocalFileError(f"{where}: not valid YAML: {problem}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    prefix = "connection "
    # Connection's own messages start with "connection 'id': "; the caller says that already.
    if text.startswith(prefix) and ": " in text:
        return text.split(": ", 1)[1]
    return text
