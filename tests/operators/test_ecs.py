"""EcsRunTaskOperator on moto: the run_task it makes, waiting (in the worker, or
deferred between short checks holding no worker), exit codes, reattach."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.runtime import InMemoryXComStore, TryRequest, execute_try
from chalicelib.sdk.dag import DAG
from operators.ecs import EcsRunTaskOperator, check_stopped_task
from tests.operators.conftest import REGION
from tests.operators.support import run_operator
from tests.runtime.runtime_doubles import Clock, scheduled_run

CLUSTER = "jobs"


@pytest.fixture
def ecs(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="jobs", Description="j", VpcId=vpc)["GroupId"]
    client = boto3.client("ecs")
    client.create_cluster(clusterName=CLUSTER)
    client.register_task_definition(
        family="transform",
        containerDefinitions=[{"name": "main", "image": "busybox", "memory": 128}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )
    sleeps: list[float] = []
    exit_codes: list[int] = []

    def fake_sleep(seconds: float) -> None:
        """No time passes; the first sleep lets the container finish with the next exit code."""
        sleeps.append(seconds)
        if len(sleeps) == 1 and exit_codes:
            for task in ecs_backends[DEFAULT_ACCOUNT_ID][REGION].tasks[CLUSTER].values():
                container = task.containers[0]
                container.last_status = "STOPPED"
                container.exitCode = exit_codes[0]

    monkeypatch.setattr(EcsRunTaskOperator, "sleep", staticmethod(fake_sleep))
    yield {
        "client": client,
        "sleeps": sleeps,
        "exit_codes": exit_codes,
        "network": {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    }


def run_task_operator(ecs: dict[str, Any], **kwargs: Any) -> EcsRunTaskOperator:
    """The operator polling inside its worker; the deferred wait's tests pass deferrable=True."""
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("waiter_delay", 5)
    return EcsRunTaskOperator(
        task_id="container",
        cluster=CLUSTER,
        task_definition="transform",
        launch_type="FARGATE",
        network_configuration=ecs["network"],
        overrides={"containerOverrides": [{"name": "main", "command": ["run", "{{ ds }}"]}]},
        **kwargs,
    )


def backend_tasks() -> list[Any]:
    return list(ecs_backends[DEFAULT_ACCOUNT_ID][REGION].tasks[CLUSTER].values())


def test_runs_the_task_waits_and_succeeds_on_exit_zero(ecs: dict[str, Any]) -> None:
    ecs["exit_codes"].append(0)
    result, store = run_operator(lambda: run_task_operator(ecs, tags={"team": "{{ dag.dag_id }}"}))
    assert result.state is TaskState.SUCCESS, result.error
    (task,) = backend_tasks()
    assert task.overrides["containerOverrides"][0]["command"] == ["run", "2024-01-01"]
    assert task.launch_type == "FARGATE"
    assert task.started_by.startswith("slipstream-")
    assert task.tags == [{"key": "team", "value": "op_dag"}]
    found, arn = store.pull("container", -1, "ecs_task_arn")
    assert found and arn == task.task_arn
    assert store.pull("container", -1, "return_value") == (False, None)  # None: no XCom
    # moto moves the task RUNNING -> ... -> STOPPED over four describes: three waits.
    assert ecs["sleeps"] == [5, 5, 5]


def test_a_non_zero_exit_code_fails_the_try_and_retries_apply(ecs: dict[str, Any]) -> None:
    ecs["exit_codes"].append(3)
    result, _ = run_operator(lambda: run_task_operator(ecs, retries=1))
    assert result.state is TaskState.UP_FOR_RETRY
    assert "container main exited with code 3" in (result.error or "")


def test_without_waiting_the_try_ends_when_the_task_starts(ecs: dict[str, Any]) -> None:
    result, _ = run_operator(lambda: run_task_operator(ecs, wait_for_completion=False))
    assert result.state is TaskState.SUCCESS, result.error
    assert ecs["sleeps"] == []
    assert len(backend_tasks()) == 1


def test_giving_up_after_waiter_max_attempts(ecs: dict[str, Any]) -> None:
    result, _ = run_operator(lambda: run_task_operator(ecs, waiter_max_attempts=2))
    assert result.state is TaskState.FAILED
    assert "still not stopped after 2 checks 5s apart" in (result.error or "")


def test_reattach_waits_for_the_task_this_try_already_started(ecs: dict[str, Any]) -> None:
    first, _ = run_operator(lambda: run_task_operator(ecs, wait_for_completion=False))
    assert first.state is TaskState.SUCCESS
    ecs["exit_codes"].append(0)
    again, store = run_operator(lambda: run_task_operator(ecs, reattach=True))
    assert again.state is TaskState.SUCCESS, again.error
    (task,) = backend_tasks()  # the re-delivered try started no second container
    assert store.pull("container", -1, "ecs_task_arn") == (True, task.task_arn)


class _StoppedOnly:
    """An ECS client whose only task of this try has already stopped with exit code 0."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def list_tasks(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(f"list_tasks {kwargs['desiredStatus']}")
        return {"taskArns": ["arn:stopped"] if kwargs["desiredStatus"] == "STOPPED" else []}

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("describe_tasks")
        container = {"name": "main", "lastStatus": "STOPPED", "exitCode": 0}
        return {
            "tasks": [
                {"taskArn": "arn:stopped", "lastStatus": "STOPPED", "containers": [container]}
            ]
        }

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a stopped task of this try must not be started again")


def test_reattach_to_a_stopped_task_reads_its_outcome(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _StoppedOnly()
    monkeypatch.setattr(
        "operators.hooks.aws_base.AwsBaseHook.get_client_type", lambda self, *a, **k: client
    )
    result, store = run_operator(
        lambda: EcsRunTaskOperator(
            task_id="container",
            cluster=CLUSTER,
            task_definition="transform",
            reattach=True,
            deferrable=False,
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert client.calls == ["list_tasks RUNNING", "list_tasks STOPPED", "describe_tasks"]
    assert store.pull("container", -1, "ecs_task_arn") == (True, "arn:stopped")


def test_an_unknown_task_definition_fails(ecs: dict[str, Any]) -> None:
    result, _ = run_operator(
        lambda: EcsRunTaskOperator(
            task_id="container", cluster=CLUSTER, task_definition="nope", launch_type="FARGATE"
        )
    )
    assert result.state is TaskState.FAILED


def test_success_rules_of_a_stopped_task() -> None:
    ok = {"taskArn": "t", "containers": [{"name": "a", "lastStatus": "STOPPED", "exitCode": 0}]}
    check_stopped_task(ok)
    with pytest.raises(Exception, match="failed to start: CannotPullContainerError"):
        check_stopped_task({"taskArn": "t", "stoppedReason": "CannotPullContainerError: x"})
    with pytest.raises(Exception, match="container a exited with code 1"):
        check_stopped_task({"taskArn": "t", "containers": [{"name": "a", "lastStatus": "STOPPED"}]})
    with pytest.raises(Exception, match="still pending"):
        check_stopped_task({"taskArn": "t", "containers": [{"name": "a", "lastStatus": "PENDING"}]})


def test_a_dag_with_a_container_task_through_dags_test(ecs: dict[str, Any]) -> None:
    ecs["exit_codes"].append(0)
    with DAG("container_dag", schedule=None) as dag:
        run_task_operator(ecs)
    result = run_dag_test(dag, show=False)
    assert result.succeeded, result.reason


def _check(ecs: dict[str, Any], first_check: dt.datetime | None = None, **kwargs: Any) -> Any:
    """One deferred check of the operator's wait, as the worker runs a poke."""
    with DAG("op_dag") as dag:
        operator = run_task_operator(ecs, deferrable=True, **kwargs)
    request = TryRequest(
        dag=dag,
        spec=dag.to_spec(validate=False),
        run=scheduled_run("op_dag"),
        task_id=operator.task_id,
        first_poke_at=first_check,
    )
    store = ecs.setdefault("xcoms", InMemoryXComStore())
    return execute_try(request, store, clock=Clock())


def _stop_container(exit_code: int) -> None:
    for task in backend_tasks():
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.containers[0].last_status = "STOPPED"
        task.containers[0].exitCode = exit_code


def test_deferred_the_wait_holds_no_worker_between_checks(ecs: dict[str, Any]) -> None:
    first = _check(ecs)
    assert first.state is TaskState.UP_FOR_RESCHEDULE, first.error
    assert first.next_try_at is not None and first.first_poke_at is not None
    assert first.next_try_at - first.first_poke_at == dt.timedelta(seconds=5)
    (task,) = backend_tasks()
    assert ecs["xcoms"].pull("container", -1, "ecs_task_arn") == (True, task.task_arn)
    assert ecs["sleeps"] == []  # never waited inside the worker
    # the same first check delivered again starts no second container
    assert _check(ecs).state is TaskState.UP_FOR_RESCHEDULE
    assert len(backend_tasks()) == 1
    _stop_container(0)
    done = _check(ecs, first.first_poke_at)
    assert done.state is TaskState.SUCCESS, done.error
    assert len(backend_tasks()) == 1


def test_deferred_a_non_zero_exit_fails_the_try(ecs: dict[str, Any]) -> None:
    first = _check(ecs, retries=1)
    _stop_container(2)
    done = _check(ecs, first.first_poke_at, retries=1)
    assert done.state is TaskState.UP_FOR_RETRY
    assert "container main exited with code 2" in (done.error or "")


def test_deferred_gives_up_after_its_checks(ecs: dict[str, Any]) -> None:
    first = _check(ecs, waiter_max_attempts=3)
    long_ago = first.first_poke_at - dt.timedelta(seconds=15)
    done = _check(ecs, long_ago, waiter_max_attempts=3)
    assert done.state is TaskState.FAILED
    assert "still not stopped after 3 checks 5s apart" in (done.error or "")


def test_deferred_a_container_ecs_forgot_fails_the_try(ecs: dict[str, Any]) -> None:
    first = _check(ecs)
    ecs_backends[DEFAULT_ACCOUNT_ID][REGION].tasks[CLUSTER].clear()
    done = _check(ecs, first.first_poke_at)
    assert done.state is TaskState.FAILED
    assert "is gone" in (done.error or "")
    assert backend_tasks() == []  # and started no replacement


def test_deferred_through_dags_test(ecs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from operators.hooks.aws_base import AwsBaseHook

    real = AwsBaseHook.get_client_type
    checks: list[int] = []

    class ContainerStopsAtTheThirdCheck:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def describe_tasks(self, **kwargs: Any) -> Any:
            checks.append(1)
            if len(checks) == 3:
                _stop_container(0)
            return self.client.describe_tasks(**kwargs)

    monkeypatch.setattr(
        AwsBaseHook,
        "get_client_type",
        lambda self, *a, **k: ContainerStopsAtTheThirdCheck(real(self, *a, **k)),
    )
    with DAG("container_dag", schedule=None) as dag:
        run_task_operator(ecs, deferrable=True, waiter_delay=1)
    result = run_dag_test(dag, show=False)
    assert result.succeeded, result.reason
    assert ecs["sleeps"] == [] and len(checks) == 3  # three checks, two reschedules
    assert len(backend_tasks()) == 1
