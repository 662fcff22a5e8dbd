"""Where tries run, read from the environment (prefix ``SLIPSTREAM_``).

The control plane needs these names to start work, and the workers it starts
need the same ones to start the next tasks (the worker's own hand-off), so
both read one model from one set of variables rather than each its own.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ExecutorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLIPSTREAM_", extra="ignore")

    region: str = "us-east-1"
    endpoint_url: str | None = Field(
        default=None, description="None for AWS; a loopback URL for the local stack."
    )

    # lambda
    worker_function: str = Field(
        default="slipstream-dev-worker",
        description="Name or ARN of the worker Lambda (Chalice names it app-stage-function).",
    )

    # ecs
    ecs_cluster: str = "slipstream"
    subnets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    security_groups: Annotated[list[str], NoDecode] = Field(default_factory=list)
    assign_public_ip: bool = Field(
        default=False, description="True only in subnets without a NAT gateway."
    )
    default_image: str | None = None
    default_cpu: int = 256
    default_memory: int = 512
    task_role_arn: str | None = Field(
        default=None, description="The run-as role of container tasks that name none."
    )
    execution_role_arn: str | None = Field(
        default=None, description="Lets ECS pull the image and write logs; not the task's."
    )
    container_name: str = "worker"
    task_family_prefix: str = "slipstream-worker"
    log_group: str = "/slipstream/workers"

    # local
    local_workers: int = Field(default=2, ge=1)

    @field_validator("subnets", "security_groups", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Accept ``a,b`` as CloudFormation outputs print it, and a JSON list too."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
