"""The infra stack's worker task definition: a try that asks for its image and
size runs it without registering anything; any other shape still gets a
derived definition, registered once and cached."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import DispatchError
from chalicelib.executors.ecs_executor import WORKER_MESSAGE_ENV, EcsExecutor
from tests.executors.conftest import Recording
from tests.executors.messages import a_run, message

STACK_FAMILY = "slipstream-worker-test-default"
# What every function has from `stage wire`; the stack's definition holds only some.
ENVIRONMENT = {
    "SLIPSTREAM_STAGE": "test",
    "SLIPSTREAM_BUCKET": "slipstream-test-state",
    "SLIPSTREAM_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    "SLIPSTREAM_SECRETS_PREFIX": "slipstream/test",
}


def _register_stack_definition(aws: dict[str, Any], **changes: Any) -> str:
    """As infra/stack.yaml's WorkerTaskDefinition makes it."""
    settings = aws["settings"]
    body: dict[str, Any] = {
        "family": STACK_FAMILY,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": settings.execution_role_arn,
        "taskRoleArn": settings.task_role_arn,
        "containerDefinitions": [
            {
                "name": "worker",
                "image": settings.default_image,
                "essential": True,
                "memory": 512,
                "environment": [
                    {"name": "SLIPSTREAM_STAGE", "value": "test"},
                    {"name": "SLIPSTREAM_BUCKET", "value": "slipstream-test-state"},
                ],
            }
        ],
        **changes,
    }
    arn: str = aws["ecs"].register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]
    return arn


@pytest.fixture
def stack_arn(aws: dict[str, Any]) -> str:
    arn = _register_stack_definition(aws)
    aws["settings"] = aws["settings"].model_copy(update={"worker_task_definition": arn})
    return arn


def _executor(aws: dict[str, Any]) -> tuple[EcsExecutor, Recording]:
    client = Recording(aws["ecs"])
    executor = EcsExecutor(client, aws["settings"], ENVIRONMENT, run_reader=lambda d, r: a_run())
    return executor, client


def _run(aws: dict[str, Any], task_arn: str) -> tuple[str, dict[str, str]]:
    """The definition a started task runs and its container's override environment."""
    (task,) = aws["ecs"].describe_tasks(cluster="slipstream-test", tasks=[task_arn])["tasks"]
    (container,) = task["overrides"]["containerOverrides"]
    return task["taskDefinitionArn"], {e["name"]: e["value"] for e in container["environment"]}


def test_the_default_shape_runs_the_stacks_definition_without_registering(
    aws: dict[str, Any], stack_arn: str
) -> None:
    executor, client = _executor(aws)
    first = executor.dispatch(message("one"), ExecutorSpec(kind="ecs"))
    # the stack's own values, spelled out: the same definition still
    same = ExecutorSpec(kind="ecs", image=aws["settings"].default_image, cpu=256, memory=512)
    executor.dispatch(message("two"), same)

    assert "register_task_definition" not in client.calls
    assert client.calls.count("describe_task_definition") == 1  # once per executor
    definition, env = _run(aws, first.ref)
    assert definition == stack_arn
    assert WorkerMessage.model_validate_json(env.pop(WORKER_MESSAGE_ENV)).task_id == "one"
    # what the stack's definition lacks rides along; what it has already does not
    assert env == {
        "SLIPSTREAM_QUEUE_URL": ENVIRONMENT["SLIPSTREAM_QUEUE_URL"],
        "SLIPSTREAM_SECRETS_PREFIX": "slipstream/test",
    }
    families = aws["ecs"].list_task_definition_families()["families"]
    assert families == [STACK_FAMILY]


@pytest.mark.parametrize(
    "spec",
    [
        ExecutorSpec(kind="ecs", image="my/etl:2"),
        ExecutorSpec(kind="ecs", cpu=512, memory=1024),
        ExecutorSpec(kind="ecs", memory=1024),
    ],
    ids=["image", "cpu-and-memory", "memory"],
)
def test_an_override_registers_a_derived_definition_once_and_caches_it(
    aws: dict[str, Any], stack_arn: str, spec: ExecutorSpec
) -> None:
    executor, client = _executor(aws)
    first = executor.dispatch(message("one"), spec)
    second = executor.dispatch(message("two"), spec)

    assert client.calls.count("register_task_definition") == 1
    definition, env = _run(aws, first.ref)
    assert definition != stack_arn
    assert _run(aws, second.ref)[0] == definition
    assert set(env) == {WORKER_MESSAGE_ENV}  # the derived definition holds the rest
    derived = aws["ecs"].describe_task_definition(taskDefinition=definition)["taskDefinition"]
    (container,) = derived["containerDefinitions"]
    assert {"name": "SLIPSTREAM_QUEUE_URL", "value": ENVIRONMENT["SLIPSTREAM_QUEUE_URL"]} in (
        container["environment"]
    )


def test_per_try_role_stays_a_run_task_override_on_the_stacks_definition(
    aws: dict[str, Any], stack_arn: str
) -> None:
    role = "arn:aws:iam::123456789012:role/slipstream/dev/default/etl-runner"
    executor, _ = _executor(aws)
    handle = executor.dispatch(message(), ExecutorSpec(kind="ecs", task_role_arn=role))
    (task,) = aws["ecs"].describe_tasks(cluster="slipstream-test", tasks=[handle.ref])["tasks"]
    assert (task["taskDefinitionArn"], task["overrides"]["taskRoleArn"]) == (stack_arn, role)


def test_without_the_setting_every_shape_gets_a_derived_definition(aws: dict[str, Any]) -> None:
    executor, client = _executor(aws)
    executor.dispatch(message(), ExecutorSpec(kind="ecs"))
    assert client.calls.count("register_task_definition") == 1


def test_a_stack_definition_without_our_container_is_not_used(aws: dict[str, Any]) -> None:
    arn = _register_stack_definition(
        aws,
        containerDefinitions=[
            {"name": "app", "image": aws["settings"].default_image, "memory": 512}
        ],
    )
    aws["settings"] = aws["settings"].model_copy(update={"worker_task_definition": arn})
    executor, client = _executor(aws)
    handle = executor.dispatch(message(), ExecutorSpec(kind="ecs"))
    assert client.calls.count("register_task_definition") == 1
    assert _run(aws, handle.ref)[0] != arn


def test_a_stack_definition_that_ecs_does_not_know_is_a_dispatch_error(
    aws: dict[str, Any],
) -> None:
    missing = "arn:aws:ecs:us-east-1:123456789012:task-definition/slipstream-worker-test-default:9"
    aws["settings"] = aws["settings"].model_copy(update={"worker_task_definition": missing})
    executor, client = _executor(aws)
    for _ in range(2):  # not cached: a later dispatch asks again
        with pytest.raises(DispatchError, match=r"ECS describe_task_definition failed"):
            executor.dispatch(message(), ExecutorSpec(kind="ecs"))
    assert client.calls.count("describe_task_definition") == 2
    assert "run_task" not in client.calls


def test_overrides_that_would_pass_ecs_8_kb_use_a_derived_definition_instead(
    aws: dict[str, Any], stack_arn: str
) -> None:
    client = Recording(aws["ecs"])
    environment = {**ENVIRONMENT, "SLIPSTREAM_BIG_SETTING": "x" * 8_000}
    executor = EcsExecutor(client, aws["settings"], environment, run_reader=lambda d, r: a_run())
    handle = executor.dispatch(message(), ExecutorSpec(kind="ecs"))

    definition, env = _run(aws, handle.ref)
    assert definition != stack_arn
    assert set(env) == {WORKER_MESSAGE_ENV}
    assert client.calls.count("register_task_definition") == 1
