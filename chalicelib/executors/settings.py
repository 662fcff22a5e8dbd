"""Where tries run, read from the environment (prefix ``SLIPSTREAM_``).

The control plane needs these names to start work, and the workers it starts
need the same ones to start the next tasks (the worker's own hand-off), so
both read one model from one set of variables rather than each its own.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ExecutorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLIPSTREAM_", extra="ignore", populate_by_name=True
    )

    region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLIPSTREAM_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="Lambda sets AWS_REGION; no fixed default: a stage runs where deployed.",
    )
    endpoint_url: str | None = Field(
        default=None, description="None for AWS; a loopback URL for the local stack."
    )

    stage: str = "dev"
    table_prefix: str = "slipstream"

    # lambda
    worker_function: str = Field(
        default="",
        description="Name or ARN of the worker Lambda (stage wire sets it; "
        "empty: slipstream-<stage>-worker, Chalice's name for it).",
    )

    # ecs
    ecs_cluster: str = Field(default="", description="Empty: <prefix>-<stage> (infra/stack.yaml).")
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
    worker_task_definition: str | None = Field(
        default=None,
        description="The infra stack's worker task definition (ARN): tries asking for "
        "its image, cpu and memory run it; others get a derived definition.",
    )
    task_family_prefix: str = Field(default="", description="Empty: slipstream-worker-<stage>.")
    log_group: str = Field(default="", description="Empty: /slipstream/<stage>/workers.")

    # local
    local_workers: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _stage_names(self) -> ExecutorSettings:
        """Names left unset are this stage's, as infra/stack.yaml and Chalice make
        them: no default may name another stage's worker, cluster or log group."""
        if not self.worker_function:
            self.worker_function = f"slipstream-{self.stage}-worker"
        if not self.ecs_cluster:
            self.ecs_cluster = f"{self.table_prefix}-{self.stage}"
        if not self.task_family_prefix:
            self.task_family_prefix = f"slipstream-worker-{self.stage}"
        if not self.log_group:
            self.log_group = f"/slipstream/{self.stage}/workers"
        return self

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
