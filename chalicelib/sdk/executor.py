"""Where a task's tries run: ``"lambda"``, ``"local"``, or ``"ecs"`` with container settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.core.spec import ExecutorSpec


@dataclass(frozen=True)
class ExecutorConfig:
    """``executor=ExecutorConfig("ecs", image=..., cpu=1024, memory=2048, task_role_arn=...)``.

    cpu and memory use ECS units (1024 cpu = 1 vCPU; memory in MiB). The kind is
    checked by validation, not here, so a typo is reported with its line.
    """

    kind: str = "lambda"
    image: str | None = None
    cpu: int | None = None
    memory: int | None = None
    task_role_arn: str | None = None

    def to_spec(self) -> ExecutorSpec:
        return ExecutorSpec(
            kind=self.kind,
            image=self.image,
            cpu=self.cpu,
            memory=self.memory,
            task_role_arn=self.task_role_arn,
        )


DEFAULT_EXECUTOR = ExecutorConfig()


def as_executor_config(value: Any) -> ExecutorConfig:
    """Accept the forms users write: None, a kind string, a dict, or an ExecutorConfig."""
    if value is None:
        return DEFAULT_EXECUTOR
    if isinstance(value, ExecutorConfig):
        return value
    if isinstance(value, str):
        return ExecutorConfig(kind=value)
    if isinstance(value, ExecutorSpec):
        return ExecutorConfig(**value.model_dump())
    if isinstance(value, dict):
        try:
            return ExecutorConfig(**value)
        except TypeError as exc:
            raise ValueError(f"bad executor settings {value!r}: {exc}") from None
    raise ValueError(
        f"executor must be 'lambda', 'ecs', 'local' or an ExecutorConfig, got {value!r}"
    )
