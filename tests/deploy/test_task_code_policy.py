"""IAM, not convention, keeps one tenant's task code out of another's data.

The stack (infra/stack.yaml) is created by moto's CloudFormation for stage
``dev``, which resolves every Sub/Ref/GetAtt to the stage's account, region and
bucket; the functions' policies are rendered from its outputs as ``stage wire``
does. Two checks, each saying what it proves:

- **The evaluator** (tests/deploy/iam_eval.py, tested on its own in
  test_iam_eval.py) decides every request against those resolved documents,
  with the session's principal tag ``tenant=acme`` and the request's condition
  keys. It is the part that sees ``${aws:PrincipalTag/tenant}``, the
  ``s3:prefix`` condition and the session-tag conditions on the assume.
- **moto's enforcement** runs a real boto3 session with credentials from
  ``StsTenantCredentials`` against moto's S3 and DynamoDB. moto checks resource
  ARNs but neither substitutes policy variables nor evaluates conditions, so the
  role moto enforces carries the task-code policy with the tag already
  substituted (what AWS does for a session tagged ``acme``); conditions are the
  evaluator's part only.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from chalicelib.deploy.stage_wiring import FUNCTION_POLICIES, StackFacts, render_policy
from chalicelib.runtime.tenant_credentials import StsTenantCredentials
from chalicelib.secrets.settings import connection_secret_name, variable_parameter_name
from tests.deploy.iam_eval import (
    ALLOW,
    Request,
    evaluate,
    evaluate_with_resource_policy,
)
from tests.deploy.stacks import ROOT, create_stage_stack
from tests.infra.test_stack import CfnLoader

STAGE, REGION, ACCOUNT = "dev", "us-east-1", "123456789012"
PREFIX = f"slipstream/{STAGE}"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/task-code/tenant-acme"
ACME = {"aws:PrincipalTag/tenant": "acme"}
WORKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/slipstream-dev-worker/slipstream-dev-worker"


def _document(value: Any) -> dict[str, Any]:
    """moto 5.2 hands back a CloudFormation-made inline policy as a Python repr."""
    if isinstance(value, dict):
        return value
    try:
        loaded: dict[str, Any] = json.loads(value)
    except ValueError:
        loaded = ast.literal_eval(value)
    return loaded


class Stage:
    def __init__(self, described: dict[str, Any]) -> None:
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        self.facts = StackFacts.from_description(STAGE, described)
        self.bucket = self.outputs["StateBucketName"]
        self.task_code_arn = self.outputs["TaskCodeRoleArn"]
        iam = boto3.client("iam")
        self.task_code = self._inline(iam, self.task_code_arn)
        self.trust = iam.get_role(RoleName=self.task_code_arn.rsplit("/", 1)[1])["Role"][
            "AssumeRolePolicyDocument"
        ]
        self.worker_task_role = self._inline(iam, self.outputs["WorkerTaskRoleArn"])
        self.functions = {
            function: render_policy(
                (ROOT / "infra" / "policies" / f"{role}.json").read_text(), self.facts
            )
            for function, role in FUNCTION_POLICIES.items()
        }

    @staticmethod
    def _inline(iam: Any, role_arn: str) -> list[dict[str, Any]]:
        name = role_arn.rsplit("/", 1)[1]
        return [
            _document(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
            for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
        ]

    def tables(self) -> list[str]:
        return [v for k, v in self.outputs.items() if k.endswith("TableName")]

    def object_arn(self, key: str) -> str:
        return f"arn:aws:s3:::{self.bucket}/{key}"


@pytest.fixture(scope="module")
def moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def stage(moto: None) -> Stage:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    described = create_stage_stack(cloudformation, STAGE)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    return Stage(described)


def _task_code(stage: Stage, action: str, resource: str, **context: Any) -> str:
    return evaluate(stage.task_code, Request(SESSION, action, resource, {**ACME, **context}))


def _secret(tenant: str, stage_prefix: str = PREFIX) -> str:
    name = connection_secret_name(stage_prefix, tenant, "warehouse")
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"


def _parameter(tenant: str, stage_prefix: str = PREFIX) -> str:
    name = variable_parameter_name(stage_prefix, tenant, "threshold")
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"


# -- what tenant acme's code may do (the evaluator) -------------------------------


def test_its_own_connection_variable_and_scratch_are_allowed(stage: Stage) -> None:
    for action in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"):
        assert _task_code(stage, action, _secret("acme")) == ALLOW
    for action in ("ssm:GetParameter", "ssm:GetParameters"):
        assert _task_code(stage, action, _parameter("acme")) == ALLOW
    path = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{PREFIX}/acme/variables"
    assert _task_code(stage, "ssm:GetParametersByPath", path) == ALLOW
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert _task_code(stage, action, stage.object_arn("tenants/acme/out/a.csv")) == ALLOW
    bucket = f"arn:aws:s3:::{stage.bucket}"
    for prefix in ("tenants/acme/", "tenants/acme/out/"):
        assert _task_code(stage, "s3:ListBucket", bucket, **{"s3:prefix": prefix}) == ALLOW


def test_another_tenants_secret_variable_and_scratch_are_refused(stage: Stage) -> None:
    # globex; a tenant whose name starts with acme's; acme itself in another stage
    for secret in (_secret("globex"), _secret("acmecorp"), _secret("acme", "slipstream/prod")):
        assert _task_code(stage, "secretsmanager:GetSecretValue", secret) != ALLOW
    for parameter in (_parameter("globex"), _parameter("acme", "slipstream/prod")):
        assert _task_code(stage, "ssm:GetParameter", parameter) != ALLOW
    for key in ("tenants/globex/out/a.csv", "tenants/acmecorp/a", "tenants/a"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert _task_code(stage, action, stage.object_arn(key)) != ALLOW, (action, key)
    bucket = f"arn:aws:s3:::{stage.bucket}"
    for prefix in ("tenants/globex/", "tenants/", "", "results/"):
        assert _task_code(stage, "s3:ListBucket", bucket, **{"s3:prefix": prefix}) != ALLOW
    assert _task_code(stage, "s3:ListBucket", bucket) != ALLOW  # no prefix: the whole bucket


def test_no_table_of_the_stage_is_reachable(stage: Stage) -> None:
    """Run items, task instances, results: Slipstream's own state stays with the
    worker's parent process, whatever tenant the item belongs to."""
    tables = stage.tables()
    assert {f"slipstream-{STAGE}-{t}" for t in ("dag-runs", "task-instances", "results")} <= set(
        tables
    )
    for table in tables:
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
        for resource in (arn, f"{arn}/index/by_tenant"):
            for action in ("GetItem", "PutItem", "UpdateItem", "Query", "DeleteItem"):
                assert _task_code(stage, f"dynamodb:{action}", resource) != ALLOW


def test_results_and_bundles_of_any_tenant_are_refused(stage: Stage) -> None:
    for key in (
        "results/acme__daily#2026-01-01/extract/-1/return_value/0f.json",
        "results/globex__daily#2026-01-01/extract/-1/return_value/0f.json",
        "bundles/" + "0" * 64 + ".zip",
        "deployments/dev/tenants/acme/dags.json",
    ):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert _task_code(stage, action, stage.object_arn(key)) != ALLOW, (action, key)


def test_it_cannot_assume_a_role_again_or_pass_one(stage: Stage) -> None:
    tagged = {"aws:RequestTag/tenant": "globex", "aws:TagKeys": ["tenant"]}
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert _task_code(stage, action, stage.task_code_arn, **tagged) != ALLOW
    for role in (stage.outputs["WorkerTaskRoleArn"], stage.outputs["WorkerExecutionRoleArn"]):
        context = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        assert _task_code(stage, "iam:PassRole", role, **context) != ALLOW


def test_the_policy_grants_only_secrets_variables_and_scratch(stage: Stage) -> None:
    statements = [s for policy in stage.task_code for s in policy["Statement"]]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {a.split(":")[0] for a in actions} == {"secretsmanager", "ssm", "s3"}
    assert all(
        s["Effect"] == "Allow" and "${aws:PrincipalTag/tenant}" in json.dumps(s) for s in statements
    )


def test_the_workers_own_role_is_allowed_what_task_code_is_refused(stage: Stage) -> None:
    """The control: the same requests pass the worker's policy, so the refusals
    above come from TaskCodeRole's narrower grants, not from the evaluator."""
    worker = [stage.functions["worker"]]
    runs = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{stage.outputs['DagRunsTableName']}"
    for action, resource in (
        ("dynamodb:GetItem", runs),
        ("dynamodb:UpdateItem", runs),
        ("s3:GetObject", stage.object_arn("bundles/" + "0" * 64 + ".zip")),
        ("s3:PutObject", stage.object_arn("results/acme__daily#r/t/-1/return_value/0f.json")),
        ("secretsmanager:GetSecretValue", _secret("globex")),
    ):
        assert evaluate(worker, Request(WORKER, action, resource, ACME)) == ALLOW, action
        assert _task_code(stage, action, resource) != ALLOW, action


# -- who may assume the role (the evaluator, identity policy and trust) ----------


def _assume(stage: Stage, identity: list[dict[str, Any]], principal: str, **context: Any) -> bool:
    """sts:AssumeRole with tags needs AssumeRole and TagSession, both in the caller's
    policy and the role's trust policy (which names the account: it delegates)."""
    return all(
        evaluate_with_resource_policy(
            identity, stage.trust, Request(principal, action, stage.task_code_arn, context)
        )
        == ALLOW
        for action in ("sts:AssumeRole", "sts:TagSession")
    )


def test_the_worker_assumes_the_role_only_with_exactly_a_tenant_tag(stage: Stage) -> None:
    for identity in (stage.functions["worker"], stage.worker_task_role):
        policies = identity if isinstance(identity, list) else [identity]
        tagged = {"aws:RequestTag/tenant": "acme", "aws:TagKeys": ["tenant"]}
        assert _assume(stage, policies, WORKER, **tagged)
        assert not _assume(stage, policies, WORKER)  # no tag
        extra = {**tagged, "aws:RequestTag/team": "x", "aws:TagKeys": ["tenant", "team"]}
        assert not _assume(stage, policies, WORKER, **extra)
        other = {"aws:RequestTag/team": "x", "aws:TagKeys": ["team"]}
        assert not _assume(stage, policies, WORKER, **other)


def test_the_scheduler_and_the_api_cannot_assume_it(stage: Stage) -> None:
    tagged = {"aws:RequestTag/tenant": "acme", "aws:TagKeys": ["tenant"]}
    for function in ("scheduler_tick", "scheduler_events", "api_handler"):
        assert not _assume(stage, [stage.functions[function]], WORKER, **tagged), function
    stranger = "arn:aws:sts::999999999999:assumed-role/x/y"
    assert not _assume(stage, [stage.functions["worker"]], stranger, **tagged)


# -- moto's enforcement, end to end with StsTenantCredentials ---------------------


def test_moto_refuses_the_tenants_code_slipstreams_state(stage: Stage) -> None:
    """moto checks S3 and DynamoDB resources for a role session; it does not
    substitute ``${aws:PrincipalTag/tenant}``, so its role carries the policy as
    AWS evaluates it for tenant acme (the variable replaced by 'acme')."""
    iam = boto3.client("iam")
    s3 = boto3.client("s3", region_name=REGION)
    policy = json.dumps(stage.task_code[0]).replace("${aws:PrincipalTag/tenant}", "acme")
    role = iam.create_role(
        RoleName="moto-task-code-acme",
        Path=f"/slipstream/{STAGE}/",
        AssumeRolePolicyDocument=json.dumps(stage.trust),
    )["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="task-code", PolicyDocument=policy)
    for key in ("results/r/t/-1/return_value/x.json", "bundles/b.zip", "tenants/globex/a"):
        s3.put_object(Bucket=stage.bucket, Key=key, Body=b"{}")
    sts = boto3.client("sts", region_name=REGION)
    credentials = StsTenantCredentials(role["Arn"], sts, lambda: dt.datetime.now(dt.UTC))
    variables = credentials("acme")
    session = boto3.Session(
        aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=variables["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )
    user_s3, user_dynamodb = session.client("s3"), session.client("dynamodb")
    with enable_iam_authentication():
        user_s3.put_object(Bucket=stage.bucket, Key="tenants/acme/a", Body=b"mine")
        assert user_s3.get_object(Bucket=stage.bucket, Key="tenants/acme/a")["Body"].read() == (
            b"mine"
        )
        for key in ("results/r/t/-1/return_value/x.json", "bundles/b.zip", "tenants/globex/a"):
            with pytest.raises(ClientError, match="AccessDenied"):
                user_s3.get_object(Bucket=stage.bucket, Key=key)
            with pytest.raises(ClientError, match="AccessDenied"):
                user_s3.put_object(Bucket=stage.bucket, Key=key, Body=b"overwritten")
        runs = stage.outputs["DagRunsTableName"]
        with pytest.raises(ClientError, match="dynamodb:GetItem"):
            user_dynamodb.get_item(
                TableName=runs, Key={"dag_id": {"S": "acme__daily"}, "run_id": {"S": "r"}}
            )
        with pytest.raises(ClientError, match="dynamodb:PutItem"):
            user_dynamodb.put_item(
                TableName=runs, Item={"dag_id": {"S": "globex__daily"}, "run_id": {"S": "r"}}
            )
    assert s3.get_object(Bucket=stage.bucket, Key="bundles/b.zip")["Body"].read() == b"{}"


def test_the_container_worker_learns_the_role_from_its_environment() -> None:
    """The stack's own worker task definition, like the ones EcsExecutor registers
    from the functions' environment, names the role; WorkerTaskRole may assume it."""
    template = yaml.load((ROOT / "infra" / "stack.yaml").read_text(), Loader=CfnLoader)
    resources = template["Resources"]
    (container,) = resources["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"] if "Name" in e}
    (isolated,) = [e["Fn::If"] for e in container["Environment"] if "Fn::If" in e]
    # only a stage that isolates task code (IsolateTaskCode, default true) names it
    assert isolated[0] == "IsolatesTaskCode" and isolated[2] == {"Ref": "AWS::NoValue"}
    assert isolated[1] == {
        "Name": "SLIPSTREAM_TASK_CODE_ROLE_ARN",
        "Value": {"Fn::GetAtt": ["TaskCodeRole", "Arn"]},
    }
    assert "SLIPSTREAM_TASK_CODE_ROLE_ARN" not in env
    assert resources["TaskCodeRole"]["Properties"]["Path"] == {"Fn::Sub": "/slipstream/${Stage}/"}
    assert template["Outputs"]["TaskCodeRoleArn"]["Value"] == {
        "Fn::GetAtt": ["TaskCodeRole", "Arn"]
    }
