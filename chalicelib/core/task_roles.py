"""Which IAM role a DAG's container tasks may run as.

The scheduler may pass any role under ``role/slipstream/<stage>/`` to ECS (IAM
cannot tell one DAG's dispatch from another's), so which DAG may name which
role is checked here, at deploy and again at dispatch: a DAG's
``executor.task_role_arn`` must be under its tenant's path
``role/slipstream/<stage>/<tenant>/`` or be the stage's default worker task
role. Without this, any DAG of a stage could run its containers with another
tenant's data access (docs/security.md).
"""

from __future__ import annotations

import re

DEFAULT_TENANT = "default"
"""The tenant of DAGs deployed without one (chalicelib.store.models.DEFAULT_TENANT)."""

_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role(?P<path>/(?:[^/]+/)*)(?P<name>[\w+=,.@-]+)$"
)


def tenant_role_path(stage: str, tenant: str | None) -> str:
    """The IAM path a tenant's task roles are created under."""
    return f"/slipstream/{stage}/{tenant or DEFAULT_TENANT}/"


def task_role_refusal(
    role_arn: str,
    *,
    stage: str,
    tenant: str | None,
    default_role_arn: str | None = None,
) -> str | None:
    """Why ``role_arn`` may not be this tenant's task role; None when it may."""
    if default_role_arn and role_arn == default_role_arn:
        return None
    path = tenant_role_path(stage, tenant)
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        return f"executor task_role_arn {role_arn!r} is not an IAM role ARN"
    default = _ROLE_ARN.match(default_role_arn or "")
    if default is not None and match["account"] != default["account"]:
        return (
            f"executor task_role_arn {role_arn!r} is in account {match['account']}, "
            f"not the stage's ({default['account']})"
        )
    if match["path"] != path:
        return (
            f"executor task_role_arn {role_arn!r} is not a role of tenant "
            f"{tenant or DEFAULT_TENANT!r}: create it under the IAM path {path} "
            "(or name no role to run as the stage's worker task role)"
        )
    return None
