"""Where connections and variables live, read from the environment (prefix ``SLIPSTREAM_``).

One prefix per stage keeps a dev and a prod stack in one account apart, and
gives IAM a single ARN pattern per stage and tenant to grant a worker.
"""

from __future__ import annotations

import re

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.secrets.errors import InvalidKey

# Airflow's rule for conn_ids and variable keys (letters, digits, _ . -), which
# also fits Secrets Manager names and SSM path segments; tenants follow it too.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")
MAX_KEY_LENGTH = 250


def validate_key(kind: str, key: str) -> str:
    """``key`` if usable as a conn_id / variable key / tenant, else a clear ``InvalidKey``."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"{kind} must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"{kind} {key[:40]!r}... is longer than {MAX_KEY_LENGTH} characters")
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKey(f"{kind} {key!r} may contain only letters, digits, '_', '.' and '-'")
    return key


class SecretsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLIPSTREAM_", extra="ignore", populate_by_name=True
    )

    stage: str = "dev"
    secrets_prefix: str | None = Field(
        default=None, description="Defaults to slipstream/<stage>; no leading or trailing '/'."
    )
    region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLIPSTREAM_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="Lambda sets AWS_REGION; no fixed default: a stage runs where deployed.",
    )
    endpoint_url: str | None = Field(
        default=None, description="None for AWS; a loopback URL for the local stack."
    )
    cache_seconds: int = Field(
        default=30,
        description="How long a warm worker reuses a connection or variable it read.",
    )

    @property
    def prefix(self) -> str:
        return (self.secrets_prefix or f"slipstream/{self.stage}").strip("/")


def connection_secret_name(prefix: str, tenant: str, conn_id: str) -> str:
    return f"{prefix}/{tenant}/connections/{conn_id}"


def connections_prefix(prefix: str, tenant: str) -> str:
    return f"{prefix}/{tenant}/connections/"


def variable_parameter_name(prefix: str, tenant: str, key: str) -> str:
    return f"/{prefix}/{tenant}/variables/{key}"


def variables_path(prefix: str, tenant: str) -> str:
    return f"/{prefix}/{tenant}/variables"
