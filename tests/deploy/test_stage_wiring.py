"""``stage wire``: two stages' stacks wire into disjoint resources, and the command
gives one line, not a traceback, when it cannot wire."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from chalicelib.deploy.stage_wiring import (
    FUNCTION_POLICIES,
    StackFacts,
    WiringError,
    stage_environment,
    wire_project,
)
from tests.deploy.stacks import ROOT, create_stage_stack


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, dict[str, Any]]]:
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        yield {stage: create_stage_stack(cloudformation, stage) for stage in ("dev", "prod")}


def _project(tmp_path: Path) -> Path:
    (tmp_path / ".chalice").mkdir()
    shutil.copy(ROOT / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    shutil.copytree(ROOT / "infra" / "policies", tmp_path / "infra" / "policies")
    return tmp_path


def _resources(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        value = statement["Resource"]
        found |= {value} if isinstance(value, str) else set(value)
    return found - {"*"}


def test_two_stages_share_no_resource_name(
    stacks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    project = _project(tmp_path)
    names: dict[str, set[str]] = {}
    for stage, described in stacks.items():
        facts = StackFacts.from_description(stage, described)
        wire_project(project, facts)
        env = stage_environment(facts)
        # the prefix, the executor kinds and the public-IP flag are not names of resources
        flags = ("SLIPSTREAM_EXECUTORS", "SLIPSTREAM_TABLE_PREFIX", "SLIPSTREAM_ASSIGN_PUBLIC_IP")
        named = {v for k, v in env.items() if k not in flags}
        named |= {
            v for k, v in facts.outputs.items() if k not in ("TablePrefix", "WorkerAssignPublicIp")
        }
        for function in FUNCTION_POLICIES:
            policy = json.loads(
                (project / ".chalice" / f"policy-{stage}-{function}.json").read_text()
            )
            named |= _resources(policy)
        names[stage] = named
    assert names["dev"] and names["prod"]
    assert names["dev"].isdisjoint(names["prod"]), names["dev"] & names["prod"]
    config = json.loads((project / ".chalice" / "config.json").read_text())
    assert set(config["stages"]) >= {"local", "dev", "prod"}
    dev_env = config["stages"]["dev"]["environment_variables"]
    assert dev_env["SLIPSTREAM_QUEUE_NAME"] == "slipstream-dev-scheduler"
    assert config["stages"]["prod"]["lambda_functions"]["worker"]["reserved_concurrency"] == 100
    assert config["stages"]["dev"]["xray"] is True  # what the stage had is kept


def test_a_new_stage_gets_an_entry_of_its_own(
    stacks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    project = _project(tmp_path)
    described = {
        **stacks["dev"],
        "Outputs": [
            {**o, "OutputValue": o["OutputValue"].replace("-dev", "-qa")}
            for o in stacks["dev"]["Outputs"]
            if o["OutputKey"] != "Stage"
        ],
    }
    wire_project(project, StackFacts.from_description("qa", described))
    config = json.loads((project / ".chalice" / "config.json").read_text())
    assert config["stages"]["qa"]["api_gateway_stage"] == "qa"
    assert config["stages"]["qa"]["autogen_policy"] is False


def test_a_stack_of_another_stage_is_refused(stacks: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(WiringError, match="the stack is stage 'dev', not 'prod'"):
        StackFacts.from_description("prod", stacks["dev"])


def test_a_stack_without_the_outputs_is_refused(stacks: dict[str, dict[str, Any]]) -> None:
    described = {**stacks["dev"], "Outputs": []}
    with pytest.raises(WiringError, match=r"no output .*WorkerFunctionName"):
        StackFacts.from_description("dev", described)


def _cli(args: list[str]) -> Any:
    from chalicelib.cli.main import _register_commands, app

    _register_commands()
    return CliRunner().invoke(app, args)


def test_wire_without_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    project = _project(tmp_path)
    result = _cli(
        ["stage", "wire", "--stage", "dev", "--from-stack", "x", "--project", str(project)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: reading stack 'x': no AWS credentials found: set AWS_PROFILE, or "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ]
    result = _cli(["stage", "preflight", "--stage", "dev"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: stage dev: no AWS credentials found: set AWS_PROFILE, or "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )


def test_wire_from_a_stack_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with mock_aws():
        result = _cli(
            ["stage", "wire", "--stage", "dev", "--from-stack", "nope", "--project", str(project)]
        )
    assert result.exit_code == 2
    assert result.output.startswith("error: reading stack 'nope': ValidationError")
    assert len(result.output.strip().splitlines()) == 1


def test_a_bad_stage_name_is_one_line(tmp_path: Path) -> None:
    result = _cli(["stage", "wire", "--stage", "Prod!", "--from-stack", "x"])
    assert result.exit_code == 2
    assert "stage name 'Prod!' must be a lowercase letter" in result.output


def test_a_stage_name_cannot_extend_another_stages_name(
    stacks: dict[str, dict[str, Any]],
) -> None:
    # "dev-x" would sit inside dev's table/slipstream-dev-* and task-definition wildcards
    with pytest.raises(WiringError, match="no hyphen"):
        StackFacts.from_description("dev-x", stacks["dev"])
    result = _cli(["stage", "wire", "--stage", "dev-x", "--from-stack", "x"])
    assert result.exit_code == 2
    assert "would also cover 'dev-x'" in result.output


def test_env_prints_the_wired_stage_and_refuses_an_unwired_one(
    stacks: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    project = _project(tmp_path)
    wire_project(project, StackFacts.from_description("dev", stacks["dev"]))
    result = _cli(["stage", "env", "--stage", "dev", "--project", str(project)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "export SLIPSTREAM_STAGE=dev" in lines
    assert "export SLIPSTREAM_WORKER_FUNCTION=slipstream-dev-worker" in lines
    result = _cli(["stage", "env", "--stage", "prod", "--project", str(project)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: stage 'prod' is not wired: run `stage wire --stage prod --from-stack ...`"
    )


def test_the_stacks_worker_task_definition_reaches_the_executor(
    stacks: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an image the stack makes the default worker task definition; wiring
    hands its ARN to every function, where the ECS executor runs it."""
    from chalicelib.executors.settings import ExecutorSettings

    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/slipstream-worker:1"
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")  # stacks' moto
    described = create_stage_stack(cloudformation, "img", {"WorkerImage": image})
    facts = StackFacts.from_description("img", described)
    arn = facts.outputs["WorkerTaskDefinitionArn"]
    assert ":task-definition/slipstream-worker-img-default:" in arn
    env = stage_environment(facts)
    assert env["SLIPSTREAM_WORKER_TASK_DEFINITION"] == arn
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ExecutorSettings().worker_task_definition == arn
    # a stage without an image has no such definition, and wires without one
    no_image = stage_environment(StackFacts.from_description("dev", stacks["dev"]))
    assert "SLIPSTREAM_WORKER_TASK_DEFINITION" not in no_image


def test_task_code_isolation_is_on_by_default_and_a_stage_may_turn_it_off(
    stacks: dict[str, dict[str, Any]],
) -> None:
    """IsolateTaskCode=false (one trusted tenant) wires no task-code role, so the
    worker runs user code in its own process and saves an interpreter per try."""
    isolated = stage_environment(StackFacts.from_description("dev", stacks["dev"]))
    assert ":role/slipstream/dev/" in isolated["SLIPSTREAM_TASK_CODE_ROLE_ARN"]
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")  # stacks' moto
    described = create_stage_stack(cloudformation, "solo", {"IsolateTaskCode": "false"})
    trusted = stage_environment(StackFacts.from_description("solo", described))
    assert "SLIPSTREAM_TASK_CODE_ROLE_ARN" not in trusted
