"""Where the state lives, read from the environment (prefix ``SLIPSTREAM_``).

Table names are derived from one prefix and the stage so that a dev and a
prod stack can share an account, and so tests can point at throwaway tables.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLIPSTREAM_", extra="ignore", populate_by_name=True
    )

    stage: str = "dev"
    table_prefix: str = "slipstream"
    region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLIPSTREAM_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="Lambda sets AWS_REGION; no fixed default: a stage runs where deployed.",
    )
    endpoint_url: str | None = Field(
        default=None, description="None for AWS; a loopback URL for the local stack."
    )
    bucket: str = Field(
        default="",
        description="The stage's state bucket (stack output StateBucketName); "
        "empty: <prefix>-<stage>-state, the local stack's name.",
    )
    large_value_bytes: int = Field(
        default=300_000, description="Specs longer than this go to S3 behind a pointer."
    )
    task_log_group: str | None = Field(
        default=None, description="CloudWatch Logs group of task logs; None: per stage."
    )

    @model_validator(mode="after")
    def _stage_bucket(self) -> StoreSettings:
        """A bucket of this stage only: a default naming one shared bucket would
        let two stages read each other's bundles and results."""
        if not self.bucket:
            self.bucket = f"{self.table_prefix}-{self.stage}-state"
        return self

    @property
    def task_logs_group(self) -> str:
        """SLIPSTREAM_TASK_LOG_GROUP, else ``/slipstream/<stage>/tasks`` (infra/stack.yaml)."""
        return self.task_log_group or f"/slipstream/{self.stage}/tasks"

    def table_name(self, entity: str) -> str:
        return f"{self.table_prefix}-{self.stage}-{entity}"

    @property
    def dags_table(self) -> str:
        return self.table_name("dags")

    @property
    def dag_versions_table(self) -> str:
        return self.table_name("dag-versions")

    @property
    def dag_runs_table(self) -> str:
        return self.table_name("dag-runs")

    @property
    def task_instances_table(self) -> str:
        return self.table_name("task-instances")

    @property
    def pools_table(self) -> str:
        return self.table_name("pools")
