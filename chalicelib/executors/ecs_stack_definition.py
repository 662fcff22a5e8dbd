"""The infra stack's worker task definition, and when a try may run it as is.

``infra/stack.yaml`` creates one task definition per stage (the stage's image,
the default size, the execution and task roles, awslogs to the stage's worker
log group) and ``stage wire`` hands its ARN to every function as
``SLIPSTREAM_WORKER_TASK_DEFINITION``. A try that asks for exactly what it
gives (image, cpu, memory, and a container of our name) runs it: the common
case then needs no ``RegisterTaskDefinition`` at all, only a task that
overrides the image or size gets a derived definition of its own.

The stack's definition carries fewer settings than a derived one (which bakes
in every ``SLIPSTREAM_*`` of the dispatcher), so what it lacks or has
differently rides in the RunTask environment override next to the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StackDefinition:
    """What dispatch compares against a try's shape, from one DescribeTaskDefinition."""

    arn: str
    image: str | None
    cpu: int | None
    memory: int | None
    environment: Mapping[str, str]
    usable: bool
    """False when ECS keeps it INACTIVE or it has no container of our name:
    every try then gets a derived definition, as without the setting."""

    @classmethod
    def from_description(cls, described: Mapping[str, Any], container_name: str) -> StackDefinition:
        definition = described.get("taskDefinition") or {}
        containers = definition.get("containerDefinitions") or []
        ours = [c for c in containers if c.get("name") == container_name]
        container = ours[0] if ours else {}
        return cls(
            arn=str(definition.get("taskDefinitionArn", "")),
            image=container.get("image"),
            cpu=_int_or_none(definition.get("cpu")),
            memory=_int_or_none(definition.get("memory")),
            environment={e["name"]: e["value"] for e in container.get("environment") or []},
            usable=bool(ours) and definition.get("status", "ACTIVE") == "ACTIVE",
        )

    def fits(self, image: str, cpu: int, memory: int) -> bool:
        """Whether a try of this shape may run the stack's definition unchanged."""
        return self.usable and (self.image, self.cpu, self.memory) == (image, cpu, memory)

    def missing_environment(self, wanted: Mapping[str, str]) -> dict[str, str]:
        """The variables of ``wanted`` the definition lacks or sets differently."""
        return {k: v for k, v in sorted(wanted.items()) if self.environment.get(k) != v}


def _int_or_none(value: object) -> int | None:
    """ECS answers cpu and memory as strings ("256"); absent on some definitions."""
    try:
        return int(str(value))
    except ValueError:
        return None
