"""EcsExecutor on moto: the Fargate run_task it makes, its task definitions, and
describe() as the reaper reads it.

moto starts nothing: the tests assert the request and drive the task to
STOPPED with moto's state manager.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors.base import DispatchError
from chalicelib.executors.ecs_executor import (
    WORKER_ENTRYPOINT,
    WORKER_MESSAGE_ENV,
    EcsExecutor,
    EcsTaskStatus,
    check_fargate_size,
    try_token,
)
from tests.executors.conftest import DEFAULT_ROLE, REGION
from tests.executors.messages import a_run, message

DAG_ROLE = "arn:aws:iam::123456789012:role/slipstream/dev/default/etl-runner"


def _executor(aws: dict[str, Any]) -> EcsExecutor:
    # message() carries no run snapshot: the role check reads the run (default tenant)
    return EcsExecutor(
        aws["ecs"], aws["settings"], {"SLIPSTREAM_STAGE": "test"}, run_reader=lambda d, r: a_run()
    )


def _task(aws: dict[str, Any], arn: str) -> dict[str, Any]:
    task: dict[str, Any] = aws["ecs"].describe_tasks(
        cluster="slipstream-test", tasks=[arn], include=["TAGS"]
    )["tasks"][0]
    return task


def test_run_task_carries_the_message_role_network_and_tags(aws: dict[str, Any]) -> None:
    msg = message(map_index=7, try_number=3)
    spec = ExecutorSpec(kind="ecs", image="my/etl:2", cpu=1024, memory=4096, task_role_arn=DAG_ROLE)
    handle = _executor(aws).dispatch(msg, spec)

    assert handle.kind == "ecs"
    assert handle.ref.startswith("arn:aws:ecs:us-east-1:")
    task = _task(aws, handle.ref)
    assert task["launchType"] == "FARGATE"
    assert task["overrides"]["taskRoleArn"] == DAG_ROLE
    (container,) = task["overrides"]["containerOverrides"]
    assert container["name"] == "worker"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert WorkerMessage.model_validate_json(env[WORKER_MESSAGE_ENV]) == msg
    assert task["startedBy"] == f"slipstream-{try_token(msg)[:16]}"
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags == {
        "slipstream:dag": "etl",
        "slipstream:run": "scheduled__2024-01-01T00:00:00+00:00",
        "slipstream:task": "extract",
        "slipstream:map-index": "7",
        "slipstream:try": "3",
    }
    network = (
        ecs_backends[DEFAULT_ACCOUNT_ID][REGION]
        .tasks["slipstream-test"][handle.ref]
        .network_configuration["awsvpcConfiguration"]
    )
    assert network == {
        "subnets": [aws["subnet"]],
        "securityGroups": [aws["group"]],
        "assignPublicIp": "DISABLED",
    }


def test_the_task_definition_has_the_shape_image_and_worker_entrypoint(
    aws: dict[str, Any],
) -> None:
    spec = ExecutorSpec(kind="ecs", image="my/etl:2", cpu=1024, memory=4096)
    handle = _executor(aws).dispatch(message(), spec)
    arn = _task(aws, handle.ref)["taskDefinitionArn"]
    definition = aws["ecs"].describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert definition["family"].startswith("slipstream-worker-")
    assert (definition["cpu"], definition["memory"]) == ("1024", "4096")
    assert definition["networkMode"] == "awsvpc"
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["taskRoleArn"] == DEFAULT_ROLE
    (container,) = definition["containerDefinitions"]
    assert container["image"] == "my/etl:2"
    assert container["entryPoint"] == list(WORKER_ENTRYPOINT)
    assert {"name": "SLIPSTREAM_STAGE", "value": "test"} in container["environment"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/slipstream/test/workers"


def test_defaults_apply_when_the_task_names_no_container_settings(aws: dict[str, Any]) -> None:
    handle = _executor(aws).dispatch(message(), ExecutorSpec(kind="ecs"))
    task = _task(aws, handle.ref)
    assert task["overrides"]["taskRoleArn"] == DEFAULT_ROLE
    definition = aws["ecs"].describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    container = definition["taskDefinition"]["containerDefinitions"][0]
    assert container["image"] == aws["settings"].default_image
    assert definition["taskDefinition"]["memory"] == "512"


def test_one_definition_per_shape_found_again_by_a_cold_executor(aws: dict[str, Any]) -> None:
    small = ExecutorSpec(kind="ecs", image="a:1", cpu=256, memory=512)
    big = ExecutorSpec(kind="ecs", image="a:1", cpu=2048, memory=8192)
    first = _executor(aws)
    arns = {first.task_definition("a:1", 256, 512) for _ in range(3)}
    first.dispatch(message("one"), small)
    first.dispatch(message("two"), big)
    cold = _executor(aws)
    assert cold.task_definition("a:1", 256, 512) in arns
    families = aws["ecs"].list_task_definition_families()["families"]
    assert len(families) == 2
    revisions = aws["ecs"].list_task_definitions()["taskDefinitionArns"]
    assert len(revisions) == 2


def test_client_token_is_stable_per_try_and_within_ecs_limit() -> None:
    token = try_token(message())
    assert token == try_token(message())
    assert len(token) <= 64
    assert token != try_token(message(try_number=2))
    assert token != try_token(message(map_index=0))


def test_describe_reports_a_stopped_task_with_its_exit_code(aws: dict[str, Any]) -> None:
    executor = _executor(aws)
    handle = executor.dispatch(message(), ExecutorSpec(kind="ecs"))
    running = executor.describe(handle.ref)  # moto advances the task on each describe
    assert not running.stopped
    assert not running.died

    backend_task = ecs_backends[DEFAULT_ACCOUNT_ID][REGION].tasks["slipstream-test"][handle.ref]
    backend_task.containers[0].exitCode = 137
    backend_task.stopped_reason = "OutOfMemoryError: container killed"
    state_manager.set_transition("ecs::task", {"progression": "immediate"})
    try:
        status = executor.describe(handle.ref)
    finally:
        state_manager.unset_transition("ecs::task")
    assert status == EcsTaskStatus("STOPPED", 137, "OutOfMemoryError: container killed")
    assert status.died


def test_a_clean_exit_is_not_a_death() -> None:
    assert not EcsTaskStatus("STOPPED", 0).died
    assert EcsTaskStatus("STOPPED", None, "CannotPullContainerError").died
    assert not EcsTaskStatus("RUNNING", None).died


def test_describe_of_an_unknown_task_is_missing(aws: dict[str, Any]) -> None:
    status = _executor(aws).describe("arn:aws:ecs:us-east-1:123456789012:task/slipstream-test/0000")
    assert status.last_status == "MISSING"
    assert status.died is False


def test_no_image_anywhere_is_a_dispatch_error(aws: dict[str, Any]) -> None:
    settings = aws["settings"].model_copy(update={"default_image": None})
    with pytest.raises(DispatchError, match=r"no container image.*SLIPSTREAM_DEFAULT_IMAGE"):
        EcsExecutor(aws["ecs"], settings).dispatch(message(), ExecutorSpec(kind="ecs"))


def test_missing_network_settings_are_a_dispatch_error(aws: dict[str, Any]) -> None:
    settings = aws["settings"].model_copy(update={"subnets": []})
    with pytest.raises(DispatchError, match="SLIPSTREAM_SUBNETS"):
        EcsExecutor(aws["ecs"], settings).dispatch(message(), ExecutorSpec(kind="ecs"))


def test_an_unknown_cluster_is_a_dispatch_error(aws: dict[str, Any]) -> None:
    settings = aws["settings"].model_copy(update={"ecs_cluster": "nowhere"})
    with pytest.raises(DispatchError, match=r"ECS run_task for etl/.*extract#1"):
        EcsExecutor(aws["ecs"], settings).dispatch(message(), ExecutorSpec(kind="ecs"))


@pytest.mark.parametrize(
    ("cpu", "memory", "ok"),
    [
        (256, 512, True),
        (256, 2048, True),
        (256, 4096, False),
        (512, 1024, True),
        (512, 1536, False),
        (4096, 30720, True),
        (8192, 20480, True),
        (8192, 18432, False),
        (16384, 122880, True),
        (300, 1024, False),
    ],
)
def test_fargate_sizes(cpu: int, memory: int, ok: bool) -> None:
    if ok:
        check_fargate_size(cpu, memory)
    else:
        with pytest.raises(DispatchError, match=f"cpu {cpu}"):
            check_fargate_size(cpu, memory)


def test_failures_in_the_run_task_answer_are_a_refusal_for_now(aws: dict[str, Any]) -> None:
    """RESOURCE:*, capacity, AGENT: the scheduler backs off and starts it again."""

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(aws["ecs"], name)

        def run_task(self, **_: Any) -> Any:
            return {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY", "arn": "x"}]}

    executor = EcsExecutor(Refusing(), aws["settings"])
    with pytest.raises(DispatchError, match=r"ECS did not start .*RESOURCE:MEMORY") as raised:
        executor.dispatch(message(), ExecutorSpec(kind="ecs"))
    assert raised.value.transient


def test_stop_stops_the_task_with_the_reason(aws: dict[str, Any]) -> None:
    executor = _executor(aws)
    arn = executor.dispatch(message(), ExecutorSpec(kind="ecs")).ref
    executor.stop(arn, "Slipstream: extract marked failed")
    task = _task(aws, arn)
    assert (task["desiredStatus"], task["stoppedReason"]) == (
        "STOPPED",
        "Slipstream: extract marked failed",
    )
