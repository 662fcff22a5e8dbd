"""infra/stack.yaml created for one stage in moto's CloudFormation, as the deploy tests need it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def create_stage_stack(
    cloudformation: Any, stage: str, parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """The stage's infra stack (``slipstream-<stage>-infra``), its DescribeStacks
    entry; ``parameters`` adds stack parameters (e.g. ``WorkerImage``)."""
    given = {"Stage": stage, **(parameters or {})}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tried to parse AWS::SQS::QueuePolicy")
        cloudformation.create_stack(
            StackName=f"slipstream-{stage}-infra",
            TemplateBody=(ROOT / "infra" / "stack.yaml").read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    (described,) = cloudformation.describe_stacks(StackName=f"slipstream-{stage}-infra")["Stacks"]
    return dict(described)
