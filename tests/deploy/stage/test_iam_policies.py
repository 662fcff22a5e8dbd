"""Each function's hand-written policy (infra/policies/) grants exactly what its code
calls, on its stage's resources only.

The actions code really calls are recorded per function while the deployed
stage runs end to end (tests/deploy/stage/deployed.py). A policy missing one
fails. A granted action this run did not call must be either one Lambda calls
on the function's behalf (``PLATFORM``) or one a path this run does not take
calls (``UNEXERCISED``, naming the file and the call that needs it; the test
checks that call is still there), else it fails as a grant no code needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.deploy.stage_wiring import FUNCTION_POLICIES
from tests.deploy.stage.aws_calls import iam_actions
from tests.deploy.stage.deployed import ROOT, STAGE, Deployed

OWN_LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
TRACING = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
PLATFORM = {
    "api": OWN_LOGS | TRACING,
    "scheduler": OWN_LOGS
    | TRACING
    # the SQS event source mapping polls with the function's role
    | {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "worker": OWN_LOGS | TRACING,
}

ECS_PATH = {
    "ecs:RunTask": ("chalicelib/executors/ecs_executor.py", '"run_task"'),
    "ecs:DescribeTasks": ("chalicelib/executors/ecs_executor.py", '"describe_tasks"'),
    "ecs:RegisterTaskDefinition": (
        "chalicelib/executors/ecs_executor.py",
        '"register_task_definition"',
    ),
    "ecs:DescribeTaskDefinition": (
        "chalicelib/executors/ecs_executor.py",
        ".describe_task_definition(",
    ),
    "ecs:TagResource": ("chalicelib/executors/ecs_executor.py", "tags=[{"),
    "iam:PassRole": ("chalicelib/executors/ecs_executor.py", '["taskRoleArn"]'),
}
UNEXERCISED: dict[str, dict[str, tuple[str, str]]] = {
    "api": {
        "dynamodb:DeleteItem": ("chalicelib/store/catalog.py", ".delete(condition="),
        "s3:GetObject": ("chalicelib/store/results.py", ".get_object("),
        "s3:PutObject": ("chalicelib/deploy/bundle_store.py", ".put_object("),
        "s3:ListBucket": ("chalicelib/deploy/bundle_store.py", ".head_object("),
        "logs:FilterLogEvents": ("chalicelib/store/task_logs.py", ".filter_log_events("),
        # marking a try failed/success stops its container (interventions)
        "ecs:StopTask": ("chalicelib/executors/ecs_executor.py", '"stop_task"'),
    },
    "scheduler": {
        "dynamodb:DeleteItem": ("chalicelib/store/backfills.py", "transaction.delete("),
        "sqs:SendMessage": ("chalicelib/handlers.py", "dead_letters().send("),
        **ECS_PATH,
    },
    "worker": {
        "dynamodb:DeleteItem": ("chalicelib/store/results.py", "item.delete()"),
        "s3:PutObject": ("chalicelib/store/results.py", ".put_object("),
        "secretsmanager:GetSecretValue": (
            "chalicelib/secrets/connection_store.py",
            ".get_secret_value(",
        ),
        "ssm:GetParameter": ("chalicelib/secrets/variable_store.py", ".get_parameter("),
        **ECS_PATH,
        # isolated tries only: TaskCodeRole for the try's tenant, with its session
        # tag (TagSession); the worker runs no try isolated in this run
        "sts:AssumeRole": ("chalicelib/runtime/tenant_credentials.py", ".assume_role("),
        "sts:TagSession": ("chalicelib/runtime/tenant_credentials.py", "Tags=[{"),
    },
}
# Actions AWS grants on "*" only (no resource-level permissions).
STAR_ONLY = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "secretsmanager:ListSecrets",
    "secretsmanager:BatchGetSecretValue",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
}


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Statement"])


def _actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in _statements(policy) for a in _listed(s["Action"])}


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _recorded(deployed: Deployed, role: str) -> set[str]:
    functions = [f for f, r in FUNCTION_POLICIES.items() if r == role]
    return set().union(*(deployed.recorder.actions.get(f, set()) for f in functions))


def _policy(deployed: Deployed, role: str) -> dict[str, Any]:
    function = next(f for f, r in FUNCTION_POLICIES.items() if r == role)
    return deployed.policies[function]


@pytest.mark.parametrize("role", sorted(PLATFORM))
def test_the_policy_grants_every_action_the_code_calls(deployed: Deployed, role: str) -> None:
    recorded = _recorded(deployed, role)
    assert recorded, f"no calls recorded for {role}"
    missing = recorded - _actions(_policy(deployed, role))
    assert not missing, f"infra/policies/{role}.json lacks {sorted(missing)}"


@pytest.mark.parametrize("role", sorted(PLATFORM))
def test_the_policy_grants_nothing_no_code_calls(deployed: Deployed, role: str) -> None:
    granted = _actions(_policy(deployed, role))
    explained = _recorded(deployed, role) | PLATFORM[role] | set(UNEXERCISED[role])
    extra = granted - explained
    assert not extra, f"infra/policies/{role}.json grants {sorted(extra)} that no code calls"


@pytest.mark.parametrize("role", sorted(PLATFORM))
def test_each_unexercised_grant_names_code_that_still_calls_it(role: str) -> None:
    for action, (path, call) in UNEXERCISED[role].items():
        assert call in (ROOT / path).read_text(), f"{role}: {action}: {path} no longer has {call}"


def test_every_statement_is_scoped_to_the_stage(deployed: Deployed) -> None:
    bucket = deployed.outputs["StateBucketName"]
    for function, policy in deployed.policies.items():
        for statement in _statements(policy):
            for resource in _listed(statement["Resource"]):
                if resource == "*":
                    assert set(_listed(statement["Action"])) <= STAR_ONLY, (function, statement)
                else:
                    assert (
                        f"-{STAGE}" in resource or f"/{STAGE}/" in resource or bucket in resource
                    ), (
                        function,
                        resource,
                    )


def test_the_api_cannot_start_compute_or_pass_roles(deployed: Deployed) -> None:
    granted = _actions(deployed.policies["api_handler"])
    compute = {a for a in granted if a.split(":")[0] in ("lambda", "ecs", "iam")}
    assert compute == {"ecs:StopTask"}  # it may only stop a marked try's container
    assert deployed.policies["api_handler"] != deployed.policies["scheduler_events"]


def _pass_role(deployed: Deployed, function: str) -> dict[str, Any]:
    (statement,) = [
        s for s in _statements(deployed.policies[function]) if s["Action"] == ["iam:PassRole"]
    ]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    return statement


def test_pass_role_is_bound_to_ecs_and_the_stage_roles(deployed: Deployed) -> None:
    """The scheduler passes any role of the stage (which DAG may name which is
    checked at deploy and dispatch: chalicelib/core/task_roles.py); the worker runs
    user code, so it passes only the default task and execution roles, never a
    tenant's (its hand-off of such a try falls back to the scheduler)."""
    assert _pass_role(deployed, "scheduler_events")["Resource"].endswith(
        f":role/slipstream/{STAGE}/*"
    )
    worker = _pass_role(deployed, "worker")["Resource"]
    assert worker == [
        deployed.outputs["WorkerExecutionRoleArn"],
        deployed.outputs["WorkerTaskRoleArn"],
    ]


def test_policy_templates_are_the_ones_wired(deployed: Deployed) -> None:
    for role in set(FUNCTION_POLICIES.values()):
        assert (Path(ROOT) / "infra" / "policies" / f"{role}.json").is_file()


def test_an_assume_with_session_tags_is_recorded_as_tag_session_too() -> None:
    tagged = {"RoleArn": "r", "Tags": [{"Key": "tenant", "Value": "acme"}]}
    assert iam_actions("sts", "AssumeRole", tagged) == {"sts:AssumeRole", "sts:TagSession"}
    assert iam_actions("sts", "AssumeRole", {"RoleArn": "r"}) == {"sts:AssumeRole"}


def test_the_worker_may_assume_only_the_stages_task_code_role(deployed: Deployed) -> None:
    """Isolated tries' user code runs with TaskCodeRole for its tenant
    (tests/deploy/test_task_code_policy.py); the worker learns the role from its
    environment, and no other function may assume it."""
    role = deployed.outputs["TaskCodeRoleArn"]
    assert f":role/slipstream/{STAGE}/" in role
    env = deployed.template["Resources"]["Worker"]["Properties"]["Environment"]["Variables"]
    assert env["SLIPSTREAM_TASK_CODE_ROLE_ARN"] == role
    for function, policy in deployed.policies.items():
        assuming = [s for s in _statements(policy) if "sts:AssumeRole" in _listed(s["Action"])]
        if function != "worker":
            assert not assuming, function
            continue
        (statement,) = assuming
        assert statement["Resource"] == role
        assert statement["Condition"]["Null"] == {"aws:RequestTag/tenant": "false"}
