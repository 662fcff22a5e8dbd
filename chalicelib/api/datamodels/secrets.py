"""Connections and variables in Airflow 3's shapes. Passwords never leave: a
connection's ``password`` is always null in answers, and secret-looking extras
and variables show ``***``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from chalicelib.api.datamodels.common import ApiModel, BodyModel, Paging

SecretKey = Annotated[str, StringConstraints(min_length=1, max_length=250, pattern=r"^[\w.\-]+$")]


class ConnectionResponse(ApiModel):
    connection_id: str
    conn_type: str
    description: str | None
    host: str | None
    login: str | None
    schema_: str | None = Field(alias="schema", serialization_alias="schema")
    port: int | None
    password: str | None = None
    extra: str | None
    team_name: str | None = None

    model_config = {"populate_by_name": True}


class ConnectionCollection(ApiModel):
    connections: list[ConnectionResponse]
    total_entries: int


class ConnectionBody(BodyModel):
    connection_id: SecretKey
    conn_type: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: str | None = None
    host: str | None = None
    login: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    port: Annotated[int, Field(ge=0, le=65535)] | None = None
    password: str | None = None
    extra: str | None = None
    team_name: str | None = None


class VariableResponse(ApiModel):
    key: str
    value: str | None
    description: str | None
    is_encrypted: bool = True
    team_name: str | None = None


class VariableCollection(ApiModel):
    variables: list[VariableResponse]
    total_entries: int


class VariableBody(BodyModel):
    key: SecretKey
    value: Any = Field(description="Stored as text; anything but a string is stored as JSON.")
    description: str | None = None
    team_name: str | None = None


class SecretListQuery(Paging):
    order_by: Literal["id", "-id", "key", "-key", "connection_id", "-connection_id"] = "id"


class UpdateMask(Paging):
    update_mask: list[str] = Field(default_factory=list)
