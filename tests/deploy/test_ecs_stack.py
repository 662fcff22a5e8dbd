"""The container half of infra/stack.yaml on moto's CloudFormation: the network it
creates (or the one it is given), the worker repository, the default task
definition with its execution and task roles, and the outputs ``stage wire``
turns into the settings EcsExecutor reads.

moto creates every resource here; what it drops is checked in the template
instead: the repository's lifecycle rule and DeletionPolicy (moto keeps no
deletion policies), and the execution role's inline statements' scoping.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from chalicelib.deploy.stage_wiring import StackFacts, stage_environment
from chalicelib.executors.ecs_executor import WORKER_ENTRYPOINT
from chalicelib.executors.settings import ExecutorSettings
from tests.infra.test_stack import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "stack.yaml"
REGION = "us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/slipstream-net-worker:0123456789ab"


def _create(cloudformation: Any, stage: str, **parameters: str) -> dict[str, Any]:
    name = f"slipstream-{stage}-infra"
    given = {"Stage": stage, **parameters}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tried to parse AWS::SQS::QueuePolicy")
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    (described,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    return dict(described)


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, dict[str, Any]]]:
    """Three stages: no network, a created network with an image, a given network."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
            for i in (1, 2)
        ]
        group = ec2.create_security_group(GroupName="own", Description="own", VpcId=vpc)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        yield {
            "plain": _create(cloudformation, "plain"),
            "net": _create(cloudformation, "net", CreateNetwork="true", WorkerImage=IMAGE),
            "given": _create(
                cloudformation,
                "given",
                WorkerSubnets=",".join(subnets),
                WorkerSecurityGroups=group["GroupId"],
            ),
        }


def _outputs(described: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def _settings(stage: str, described: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """ExecutorSettings as a function of the wired stage reads them."""
    env = stage_environment(StackFacts.from_description(stage, described))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env, ExecutorSettings()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    return loaded


def test_a_created_network_has_two_subnets_in_two_zones_and_an_egress_only_group(
    stacks: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = _outputs(stacks["net"])
    env, settings = _settings("net", stacks["net"], monkeypatch)
    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = ec2.describe_subnets(SubnetIds=settings.subnets)["Subnets"]
    assert len(subnets) == 2
    assert {s["VpcId"] for s in subnets} == {outputs["WorkerVpcId"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    (group,) = ec2.describe_security_groups(GroupIds=settings.security_groups)["SecurityGroups"]
    assert group["VpcId"] == outputs["WorkerVpcId"]
    assert group["IpPermissions"] == []  # nothing inbound
    assert [r["IpProtocol"] for r in group["IpPermissionsEgress"]] == ["-1"]
    # No NAT gateway: the tasks reach ECR and AWS through a public IP and the IGW.
    routes = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [outputs["WorkerVpcId"]]}]
    )["RouteTables"]
    gateways = {r.get("GatewayId", "") for t in routes for r in t["Routes"]}
    assert any(g.startswith("igw-") for g in gateways)
    assert settings.assign_public_ip is True
    assert env["SLIPSTREAM_EXECUTORS"] == "lambda,ecs"


def test_given_subnets_and_groups_pass_through_and_no_network_is_made(
    stacks: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = _outputs(stacks["given"])
    assert "WorkerVpcId" not in outputs
    _, settings = _settings("given", stacks["given"], monkeypatch)
    assert len(settings.subnets) == 2 and all(s.startswith("subnet-") for s in settings.subnets)
    assert settings.security_groups[0].startswith("sg-")
    assert settings.assign_public_ip is False  # your VPC: private subnets with your NAT


def test_without_a_network_the_stage_has_the_lambda_executor_only(
    stacks: dict[str, dict[str, Any]],
) -> None:
    outputs = _outputs(stacks["plain"])
    assert not {"WorkerSubnets", "WorkerSecurityGroups", "WorkerVpcId"} & set(outputs)
    assert not {"WorkerImage", "WorkerTaskDefinitionArn"} & set(outputs)
    env = stage_environment(StackFacts.from_description("plain", stacks["plain"]))
    assert env["SLIPSTREAM_EXECUTORS"] == "lambda"


def test_each_stage_has_its_own_repository(stacks: dict[str, dict[str, Any]]) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    uris = set()
    for stage, described in stacks.items():
        outputs = _outputs(described)
        (repository,) = ecr.describe_repositories(
            repositoryNames=[outputs["WorkerRepositoryName"]]
        )["repositories"]
        assert repository["repositoryName"] == f"slipstream-{stage}-worker"
        assert repository["repositoryUri"] == outputs["WorkerRepositoryUri"]
        env = stage_environment(StackFacts.from_description(stage, described))
        assert env["SLIPSTREAM_WORKER_REPOSITORY"] == repository["repositoryUri"]
        uris.add(repository["repositoryUri"])
    assert len(uris) == 3


def test_the_repository_is_retained_and_keeps_the_last_images(template: dict[str, Any]) -> None:
    """Checked in the template: moto keeps neither deletion policies nor, from
    CloudFormation, the lifecycle policy text."""
    repository = template["Resources"]["WorkerRepository"]
    assert repository["DeletionPolicy"] == repository["UpdateReplacePolicy"] == "Retain"
    text = repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
    (rule,) = json.loads(text.replace("${WorkerImagesKept}", "10"))["rules"]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    }
    assert rule["action"] == {"type": "expire"}
    assert template["Parameters"]["WorkerImagesKept"]["Default"] == 10
    # moto drops the scan setting too (describe_repositories answers {})
    assert repository["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_the_default_task_definition_runs_the_image_with_both_roles_and_stage_logs(
    stacks: dict[str, dict[str, Any]], template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's CloudFormation registers the family and the container only (it drops
    roles, cpu/memory, network mode and compatibilities): those are checked in the
    template, the rest in what moto registered."""
    properties = template["Resources"]["WorkerTaskDefinition"]["Properties"]
    assert properties["ExecutionRoleArn"] == {"Fn::GetAtt": ["WorkerExecutionRole", "Arn"]}
    assert properties["TaskRoleArn"] == {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]}
    assert properties["RequiresCompatibilities"] == ["FARGATE"]
    assert properties["NetworkMode"] == "awsvpc"
    assert (properties["Cpu"], properties["Memory"]) == ("256", "512")
    assert template["Resources"]["WorkerTaskDefinition"]["Condition"] == "HasImage"
    outputs = _outputs(stacks["net"])
    env, settings = _settings("net", stacks["net"], monkeypatch)
    assert env["SLIPSTREAM_DEFAULT_IMAGE"] == IMAGE == settings.default_image
    ecs = boto3.client("ecs", region_name=REGION)
    definition = ecs.describe_task_definition(taskDefinition=outputs["WorkerTaskDefinitionArn"])[
        "taskDefinition"
    ]
    # under the family prefix the RunTask grants cover (slipstream-worker-<stage>-*)
    assert definition["family"].startswith(f"{settings.task_family_prefix}-")
    (container,) = definition["containerDefinitions"]
    assert container["name"] == settings.container_name
    assert container["image"] == IMAGE
    assert tuple(container["entryPoint"]) == WORKER_ENTRYPOINT
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == settings.log_group == outputs["WorkerLogGroupName"]
    assert options["awslogs-region"] == REGION
    variables = {e["name"]: e["value"] for e in container["environment"]}
    assert variables["SLIPSTREAM_STAGE"] == "net"
    assert variables["SLIPSTREAM_BUCKET"] == env["SLIPSTREAM_BUCKET"]
    assert variables["SLIPSTREAM_QUEUE_URL"] == env["SLIPSTREAM_QUEUE_URL"]


def test_the_execution_role_pulls_only_stage_images_and_writes_only_worker_logs(
    template: dict[str, Any], stacks: dict[str, dict[str, Any]]
) -> None:
    role = template["Resources"]["WorkerExecutionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role  # the AWS managed policy reads every repository
    (policy,) = role["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["RegistryLogin"] == {
        "Sid": "RegistryLogin",
        "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken",
        "Resource": "*",
    }
    pull = statements["PullWorkerImages"]["Resource"]
    assert pull[0] == {"Fn::GetAtt": ["WorkerRepository", "Arn"]}
    assert pull[1]["Fn::Sub"].endswith(":repository/${TablePrefix}-${Stage}-*")
    assert statements["ContainerLogs"]["Resource"] == {"Fn::Sub": "${WorkerLogGroup.Arn}"}
    # on moto: the role exists under the stage path, trusted by ECS tasks only
    iam = boto3.client("iam", region_name=REGION)
    arn = _outputs(stacks["net"])["WorkerExecutionRoleArn"]
    created = iam.get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]
    assert created["Path"] == "/slipstream/net/"
    (name,) = iam.list_role_policies(RoleName=created["RoleName"])["PolicyNames"]
    assert name == "slipstream-worker-execution"


def test_user_code_cannot_pass_a_tenants_role(stacks: dict[str, dict[str, Any]]) -> None:
    """The default task role is what DAG code runs as: its PassRole covers only
    itself and the execution role, so a DAG cannot start a container as another
    tenant's role with boto3 (the scheduler, which checks the DAG's tenant, can)."""
    outputs = _outputs(stacks["net"])
    iam = boto3.client("iam", region_name=REGION)
    role_name = outputs["WorkerTaskRoleArn"].rsplit("/", 1)[1]
    statements = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(document, str):  # moto keeps what CloudFormation gave it: a dict's repr
            document = ast.literal_eval(document)
        statements += document["Statement"]
    (passing,) = [s for s in statements if s.get("Sid") == "PassWorkerRoles"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    passable = set(passing["Resource"])
    task_role = f"arn:aws:iam::123456789012:role/slipstream/net/{role_name}"
    execution = outputs["WorkerExecutionRoleArn"]
    assert any(_arn_match(pattern, task_role) for pattern in passable)
    assert any(_arn_match(pattern, execution) for pattern in passable)
    tenant_role = "arn:aws:iam::123456789012:role/slipstream/net/acme/etl-runner"
    assert not any(_arn_match(pattern, tenant_role) for pattern in passable)


def _arn_match(pattern: str, arn: str) -> bool:
    """IAM's resource match: ``*`` spans any characters, ``/`` included."""
    import fnmatch

    return fnmatch.fnmatchcase(arn, pattern)
