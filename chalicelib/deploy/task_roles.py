"""Deploy-time check of the roles a DAG's container tasks run as
(chalicelib/core/task_roles.py): a DAG naming another tenant's role is refused
with its file:line, and nothing of the deploy is written."""

from __future__ import annotations

import os

from chalicelib.core.errors import Problem
from chalicelib.core.spec import DagSpec
from chalicelib.core.task_roles import task_role_refusal

DEFAULT_ROLE_VARIABLE = "SLIPSTREAM_TASK_ROLE_ARN"
"""The stage's worker task role, as ``stage wire`` sets it (the deploying shell
has it from ``stage env``, the API function from its environment)."""


def task_role_problems(
    spec: DagSpec,
    file: str | None,
    *,
    stage: str,
    tenant: str | None,
    default_role_arn: str | None = None,
) -> list[Problem]:
    """One problem per task naming a role its DAG's tenant may not use."""
    default = default_role_arn or os.environ.get(DEFAULT_ROLE_VARIABLE) or None
    problems: list[Problem] = []
    for task_id, task in sorted(spec.tasks.items()):
        role = task.executor.task_role_arn
        if not role:
            continue
        refusal = task_role_refusal(role, stage=stage, tenant=tenant, default_role_arn=default)
        if refusal is not None:
            line = task.line if task.line is not None else spec.line
            problems.append(
                Problem(refusal, file=file, line=line, dag_id=spec.dag_id, task_id=task_id)
            )
    return problems
