"""Where the state lives, read from the environment (prefix ``SLIPSTREAM_``).

Table names are derived from one prefix and the stage so that a dev and a
prod stack can share an account, and so tests can point at throwaway tables.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLIPSTREAM_", extra="ignore")

    stage: str = "dev"
    table_prefix: str = "slipstream"
    region: str = "us-east-1"
    endpoint_url: str | None = Field(
        default=None, description="None for AWS; a loopback URL for the local stack."
    )
    bucket: str = "slipstream-state"
    large_value_bytes: int = Field(
        default=300_000, description="Specs longer than this go to S3 behind a pointer."
    )
    task_log_group: str | None = Field(
        default=None, description="CloudWatch Logs group of task logs; None: per stage."
    )

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
