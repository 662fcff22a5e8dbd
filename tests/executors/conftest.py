"""The ECS executor tests' moto account: a VPC a Fargate task can start in, a
cluster, and the stage's executor settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.executors.settings import ExecutorSettings

REGION = "us-east-1"
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/slipstream/default-worker"


class Recording:
    """The moto client, with the name of every call made through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="workers", Description="w", VpcId=vpc)
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="slipstream-test")
        settings = ExecutorSettings(
            ecs_cluster="slipstream-test",
            subnets=[subnet],
            security_groups=[group["GroupId"]],
            default_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/slipstream-worker:1",
            task_role_arn=DEFAULT_ROLE,
            execution_role_arn="arn:aws:iam::123456789012:role/slipstream/execution",
            log_group="/slipstream/test/workers",
        )
        yield {"ecs": ecs, "settings": settings, "subnet": subnet, "group": group["GroupId"]}
