"""infra/stack.yaml: it lints, it matches chalicelib/store's tables, and it creates
the resources on moto's CloudFormation with the rules delivering to the queue.

moto does not create ``AWS::SQS::QueuePolicy`` and drops point-in-time recovery
and bucket versioning, so those are checked in the template itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from chalicelib.store.models import build_models
from chalicelib.store.results import build_result_model
from chalicelib.store.settings import StoreSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "infra" / "stack.yaml"
REGION = "us-east-1"
STAGE, PREFIX = "test", "slipstream"
TABLE_RESOURCES = {
    "dags": "DagsTable",
    "dag-versions": "DagVersionsTable",
    "dag-runs": "DagRunsTable",
    "task-instances": "TaskInstancesTable",
    "pools": "PoolsTable",
    "results": "ResultsTable",
    "api-keys": "ApiKeysTable",
    "event-log": "EventLogTable",
    "backfills": "BackfillsTable",
    "assets": "AssetsTable",
    "hitl": "HitlTable",
}


def _all_models(settings: StoreSettings) -> list[Any]:
    return [*build_models(settings).all(), build_result_model(settings)]


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short intrinsics (``!Ref``, ``!GetAtt``, ``!Sub``...)
    as their long ``{"Fn::...": ...}`` forms."""


def _intrinsic(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    return loaded


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _model_schema(entity: str) -> dict[str, Any]:
    """The table as chalicelib/store's pynamodb model would create it."""
    settings = StoreSettings(stage=STAGE, table_prefix=PREFIX)
    models = {m.Meta.table_name: m for m in _all_models(settings)}
    schema = models[settings.table_name(entity)]._get_schema()
    return {
        "attributes": {
            a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]
        },
        "keys": {k["AttributeName"]: k["KeyType"] for k in schema["key_schema"]},
        "indexes": {
            i["index_name"]: (
                {k["AttributeName"]: k["KeyType"] for k in i["key_schema"]},
                i["projection"]["ProjectionType"],
                sorted(i["projection"].get("NonKeyAttributes", [])),
            )
            for i in schema.get("global_secondary_indexes", [])
        },
    }


def _described_schema(table: dict[str, Any]) -> dict[str, Any]:
    """The same shape from a CloudFormation resource or a DescribeTable answer."""
    return {
        "attributes": {
            a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]
        },
        "keys": {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]},
        "indexes": {
            i["IndexName"]: (
                {k["AttributeName"]: k["KeyType"] for k in i["KeySchema"]},
                i["Projection"]["ProjectionType"],
                sorted(i["Projection"].get("NonKeyAttributes", [])),
            )
            for i in table.get("GlobalSecondaryIndexes") or []
        },
    }


# -- the template itself ------------------------------------------------------


def test_cfn_lint_passes() -> None:
    lint = Path(sys.executable).with_name("cfn-lint")
    if not lint.exists():
        found = shutil.which("cfn-lint")
        if found is None:
            pytest.skip("cfn-lint is not installed in this environment")
        lint = Path(found)
    done = subprocess.run(
        [str(lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("entity", sorted(TABLE_RESOURCES))
def test_every_table_matches_its_store_model(template: dict[str, Any], entity: str) -> None:
    props = template["Resources"][TABLE_RESOURCES[entity]]["Properties"]
    assert props["TableName"] == {"Fn::Sub": f"${{TablePrefix}}-${{Stage}}-{entity}"}
    assert _described_schema(props) == _model_schema(entity)


def test_no_table_is_left_out(template: dict[str, Any]) -> None:
    tables = _resources(template, "AWS::DynamoDB::Table")
    assert set(tables) == set(TABLE_RESOURCES.values())
    assert len(_all_models(StoreSettings())) == len(tables)


def test_tables_are_on_demand_recoverable_and_retained(template: dict[str, Any]) -> None:
    for name, table in _resources(template, "AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", name


def test_the_bucket_is_versioned_and_private(template: dict[str, Any]) -> None:
    props = template["Resources"]["StateBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4


def test_the_queue_policy_admits_every_rule_that_targets_the_queue(
    template: dict[str, Any],
) -> None:
    rules = {
        name
        for name, rule in _resources(template, "AWS::Events::Rule").items()
        if {"Fn::GetAtt": ["SchedulerQueue", "Arn"]}
        in [t["Arn"] for t in rule["Properties"]["Targets"]]
    }
    (statement,) = template["Resources"]["SchedulerQueuePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    allowed = {arn["Fn::GetAtt"][0] for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"]}
    assert allowed == rules == {"CustomEventsRule", "ObjectCreatedRule", "WorkerTaskStoppedRule"}


def test_every_named_resource_has_an_output(template: dict[str, Any]) -> None:
    referenced = json.dumps(template["Outputs"])
    # rules, and the created network's plumbing nothing outside the stack refers to
    plumbing = {
        "AWS::Events::Rule",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::IAM::Policy",  # attached to a role that has its output
    }
    skipped = {"SchedulerQueuePolicy"} | {
        k for k, v in template["Resources"].items() if v["Type"] in plumbing
    }
    for name in set(template["Resources"]) - skipped:
        assert f'"{name}' in referenced, f"no output for {name}"


# -- on moto ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tried to parse AWS::SQS::QueuePolicy")
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="slipstream-test-state",
            TemplateBody=TEMPLATE.read_text(),
            Parameters=[
                {"ParameterKey": "Stage", "ParameterValue": STAGE},
                {"ParameterKey": "TablePrefix", "ParameterValue": PREFIX},
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        (described,) = cloudformation.describe_stacks(StackName="slipstream-test-state")["Stacks"]
        assert described["StackStatus"] == "CREATE_COMPLETE"
        yield {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


@pytest.mark.parametrize("entity", sorted(TABLE_RESOURCES))
def test_moto_creates_each_table_as_the_store_expects(stack: dict[str, str], entity: str) -> None:
    name = stack[f"{TABLE_RESOURCES[entity]}Name"]
    assert name == StoreSettings(stage=STAGE, table_prefix=PREFIX).table_name(entity)
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=name)["Table"]
    assert _described_schema(table) == _model_schema(entity)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_the_scheduler_queue_redrives_to_its_dead_letter_queue(stack: dict[str, str]) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack["SchedulerQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == stack["SchedulerDeadLetterQueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5
    assert attributes["VisibilityTimeout"] == "360"


def test_the_local_stack_redrives_as_the_template_declares() -> None:
    """One number: chalicelib's MAX_RECEIVE_COUNT (what the local stack creates
    its queue with) is the template's MaxReceiveCount default."""
    from chalicelib.scheduler.queue import MAX_RECEIVE_COUNT

    template = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    assert template["Parameters"]["MaxReceiveCount"]["Default"] == MAX_RECEIVE_COUNT
    redrive = template["Resources"]["SchedulerQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def _receive(stack: dict[str, str]) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(
        QueueUrl=stack["SchedulerQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=stack["SchedulerQueueUrl"], ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def test_custom_events_on_the_slipstream_bus_reach_the_queue(stack: dict[str, str]) -> None:
    assert stack["EventBusName"] == f"{PREFIX}-{STAGE}"
    events = boto3.client("events", region_name=REGION)
    events.put_events(
        Entries=[
            {
                "EventBusName": stack["EventBusName"],
                "Source": "acme.sales",
                "DetailType": "orders.loaded",
                "Detail": json.dumps({"day": "2024-01-01"}),
            }
        ]
    )
    (body,) = _receive(stack)
    assert (body["source"], body["detail-type"]) == ("acme.sales", "orders.loaded")


def test_s3_object_created_on_the_default_bus_reaches_the_queue(stack: dict[str, str]) -> None:
    events = boto3.client("events", region_name=REGION)
    detail = {"bucket": {"name": "acme-landing"}, "object": {"key": "orders/1.csv"}}
    events.put_events(
        Entries=[
            {"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)},
            {"Source": "aws.s3", "DetailType": "Object Deleted", "Detail": json.dumps(detail)},
        ]
    )
    (body,) = _receive(stack)
    assert body["detail-type"] == "Object Created"
    assert body["detail"]["object"]["key"] == "orders/1.csv"


def test_only_stopped_tasks_of_the_worker_cluster_reach_the_queue(stack: dict[str, str]) -> None:
    events = boto3.client("events", region_name=REGION)

    def task_event(cluster_arn: str, status: str) -> dict[str, str]:
        detail = {"clusterArn": cluster_arn, "lastStatus": status, "taskArn": f"t-{status}"}
        return {
            "Source": "aws.ecs",
            "DetailType": "ECS Task State Change",
            "Detail": json.dumps(detail),
        }

    other = stack["WorkerClusterArn"].replace(f"{PREFIX}-{STAGE}", "someone-else")
    events.put_events(
        Entries=[
            task_event(stack["WorkerClusterArn"], "RUNNING"),
            task_event(other, "STOPPED"),
            task_event(stack["WorkerClusterArn"], "STOPPED"),
        ]
    )
    (body,) = _receive(stack)
    assert body["detail"]["taskArn"] == "t-STOPPED"
    assert body["detail"]["clusterArn"] == stack["WorkerClusterArn"]


def test_cluster_log_group_bucket_and_roles_exist(stack: dict[str, str]) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    (cluster,) = ecs.describe_clusters(clusters=[stack["WorkerClusterName"]])["clusters"]
    assert cluster["clusterArn"] == stack["WorkerClusterArn"]
    logs = boto3.client("logs", region_name=REGION)
    groups = logs.describe_log_groups(logGroupNamePrefix=stack["WorkerLogGroupName"])
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/slipstream/test/workers"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.head_bucket(Bucket=stack["StateBucketName"])  # moto drops versioning: see template test
    iam = boto3.client("iam", region_name=REGION)
    for output in ("WorkerExecutionRoleArn", "WorkerTaskRoleArn"):
        role_name = stack[output].rsplit("/", 1)[1]
        trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        principals = [s["Principal"]["Service"] for s in trust["Statement"]]
        assert principals == ["ecs-tasks.amazonaws.com"]


def test_task_log_group_is_where_the_worker_writes(
    template: dict[str, Any], stack: dict[str, str]
) -> None:
    properties = template["Resources"]["TaskLogGroup"]["Properties"]
    assert properties["RetentionInDays"] > 0
    expected = StoreSettings(stage=STAGE, table_prefix=PREFIX).task_logs_group
    assert stack["TaskLogGroupName"] == expected == "/slipstream/test/tasks"
    logs = boto3.client("logs", region_name=REGION)
    (group,) = logs.describe_log_groups(logGroupNamePrefix=expected)["logGroups"]
    assert group["logGroupName"] == expected
    assert group.get("retentionInDays") in (None, properties["RetentionInDays"])


def test_the_local_stack_routes_events_as_the_template_declares() -> None:
    """The rules the local stack puts on moto (chalicelib/local/event_sources.py)
    match what the template's rules match, on the same buses."""
    from chalicelib.local.event_sources import OBJECT_CREATED_PATTERN, custom_events_pattern

    resources = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)["Resources"]
    created = resources["ObjectCreatedRule"]["Properties"]
    assert "EventBusName" not in created  # the default bus, where S3 sends its events
    assert created["EventPattern"] == OBJECT_CREATED_PATTERN
    custom = resources["CustomEventsRule"]["Properties"]
    assert custom["EventBusName"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert custom["EventPattern"] == custom_events_pattern({"Ref": "AWS::AccountId"})  # type: ignore[arg-type]
    assert resources["EventBus"]["Properties"]["Name"] == {"Fn::Sub": "${TablePrefix}-${Stage}"}


def test_queues_holding_messages_are_retained(template: dict[str, Any]) -> None:
    for name, queue in _resources(template, "AWS::SQS::Queue").items():
        assert queue["DeletionPolicy"] == queue["UpdateReplacePolicy"] == "Retain", name


def test_every_log_group_expires(template: dict[str, Any]) -> None:
    for name, group in _resources(template, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] > 0, name


def _task_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """WorkerTaskRole's inline policy and the policies attached to it."""
    resources = template["Resources"]
    (inline,) = resources["WorkerTaskRole"]["Properties"]["Policies"]
    statements = list(inline["PolicyDocument"]["Statement"])
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": "WorkerTaskRole"} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_the_default_task_role_cannot_reach_other_stages(template: dict[str, Any]) -> None:
    """No RunTask on "*", PassRole only to ECS and only this stage's roles."""
    role = template["Resources"]["WorkerTaskRole"]
    assert role["Properties"]["Path"] == {"Fn::Sub": "/slipstream/${Stage}/"}
    statements = {s["Sid"]: s for s in _task_role_statements(template)}
    run = statements["DispatchNextContainers"]
    assert run["Action"] == ["ecs:RunTask"] and run["Resource"] != "*"
    assert "${Stage}" in run["Resource"]["Fn::Sub"]
    passing = statements["PassWorkerRoles"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    # itself and the execution role only: never a tenant's role (tests/deploy/test_ecs_stack.py)
    assert passing["Resource"] == [
        {"Fn::GetAtt": ["WorkerExecutionRole", "Arn"]},
        {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]},
    ]
    for statement in statements.values():
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= {
                "ecs:RegisterTaskDefinition",
                "ecs:DescribeTaskDefinition",
            }


def test_the_default_task_role_grants_what_the_worker_lambda_may(
    template: dict[str, Any],
) -> None:
    """A container try runs the same worker code as the Lambda: the same actions
    (infra/policies/worker.json), less the Lambda's own logs and tracing."""
    worker = json.loads((REPO_ROOT / "infra" / "policies" / "worker.json").read_text())
    expected = {
        action
        for statement in worker["Statement"]
        if statement["Sid"] not in ("OwnLambdaLogs", "Tracing")
        for action in statement["Action"]
    }
    granted = set()
    for statement in _task_role_statements(template):
        action = statement["Action"]
        granted |= {action} if isinstance(action, str) else set(action)
    assert granted == expected
