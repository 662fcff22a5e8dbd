"""ECS-run tries on moto: STOPPED events reconcile them, refused starts back off
and then fail with ECS's reason, and a mark stops the container.

The executor is the real EcsExecutor on moto (moto starts nothing); a refused
start is stubbed at the client's edge; events are built from the task moto
holds, so the try is found from the overrides the executor really sent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.core.runs import TaskInstance
from chalicelib.core.states import TaskState
from chalicelib.executors.ecs_executor import EcsExecutor
from chalicelib.executors.settings import ExecutorSettings
from chalicelib.scheduler.container_stops import (
    is_task_stopped,
    reconcile_stopped_task,
    stop_reason,
)
from chalicelib.scheduler.interventions import Interventions
from chalicelib.scheduler.queue import parse_body
from chalicelib.scheduler.start_backoff import START_ATTEMPTS, backoff_seconds
from chalicelib.sdk import DAG
from chalicelib.store.memory import InMemoryStateStore
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

NOW = dt.datetime(2024, 1, 1, 3, 30, tzinfo=dt.UTC)
CLUSTER = "slipstream-test"
ECS = {"kind": "ecs", "image": "worker:1", "cpu": 256, "memory": 512}
OOM = "OutOfMemoryError: Container killed due to memory usage"


class Env:
    def __init__(self, stack: Stack, ecs: Any, executor: EcsExecutor):
        self.stack, self.ecs, self.executor = stack, ecs, executor

    def start(self, retries: int = 0) -> str:
        with DAG("boxed") as dag:
            EmptyOperator(task_id="only", executor=ECS, retries=retries, retry_delay=60)
        self.stack.deploy(dag)
        run, _ = self.stack.scheduler.trigger("boxed")
        self.stack.scheduler.handle(self.stack.queue.pending.pop(0)[0])
        return run.run_id

    def ti(self, run_id: str) -> TaskInstance:
        ti = self.stack.store.get_instance("boxed", run_id, "only", -1)
        assert ti is not None
        return ti

    def claim(self, run_id: str) -> None:
        ti = self.ti(run_id)
        spec = self.stack.scheduler.specs.get(
            "boxed", self.stack.store.get_run("boxed", run_id).version
        )
        assert self.stack.store.claim("boxed", run_id, spec, "only", -1, ti.try_number, NOW).won

    def task(self, arn: str) -> dict[str, Any]:
        found: dict[str, Any] = self.ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
        return found

    def stopped_event(self, arn: str, exit_code: int | None = 137) -> dict[str, Any]:
        """What EventBridge delivers for the task, with the overrides moto kept."""
        container: dict[str, Any] = {"name": "worker", "reason": OOM}
        if exit_code is not None:
            container["exitCode"] = exit_code
        return {
            "id": f"evt-{arn[-8:]}",
            "source": "aws.ecs",
            "detail-type": "ECS Task State Change",
            "detail": {
                "taskArn": arn,
                "lastStatus": "STOPPED",
                "stopCode": "EssentialContainerExited",
                "stoppedReason": "Essential container in task exited",
                "overrides": self.task(arn)["overrides"],
                "containers": [container],
            },
        }


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="w", Description="w", VpcId=vpc)["GroupId"]
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName=CLUSTER)
        settings = ExecutorSettings(
            ecs_cluster=CLUSTER, subnets=[subnet], security_groups=[group], log_group="/w"
        )
        executor = EcsExecutor(ecs, settings, {})
        store = (
            InMemoryStateStore()
            if request.param == "memory"
            else make_dynamo_store(store_settings())
        )
        stack = Stack(store=store, clock=FakeClock(NOW))
        stack.scheduler.executors = {"lambda": stack.executor, "ecs": executor}
        yield Env(stack, ecs, executor)


def test_the_started_task_is_recorded_on_its_try(env: Env) -> None:
    run_id = env.start()
    ti = env.ti(run_id)
    assert ti.state is TaskState.QUEUED and ti.external_executor_id is not None
    assert env.task(ti.external_executor_id)["startedBy"].startswith("slipstream-")


def test_a_stopped_container_fails_its_running_try_with_the_reason_and_retries_it(
    env: Env,
) -> None:
    run_id = env.start(retries=1)
    env.claim(run_id)
    first = env.ti(run_id).external_executor_id
    assert first is not None
    event = env.stopped_event(first)
    assert is_task_stopped(parse_body(json.dumps(event)))
    assert reconcile_stopped_task(env.stack.scheduler, event)
    ti = env.ti(run_id)
    assert ti.state is TaskState.UP_FOR_RETRY
    assert ti.error == (
        "ECS task stopped: Essential container in task exited; " + OOM + "; exit code 137"
    )
    env.stack.settle()  # the retry delay passes; try 2 goes to ECS as a new task
    again = env.ti(run_id)
    assert (again.state, again.try_number) == (TaskState.QUEUED, 2)
    assert again.external_executor_id not in (None, first)


def test_a_redelivered_stop_event_changes_nothing(env: Env) -> None:
    run_id = env.start(retries=0)
    env.claim(run_id)
    event = env.stopped_event(str(env.ti(run_id).external_executor_id))
    assert reconcile_stopped_task(env.stack.scheduler, event)
    failed = env.ti(run_id)
    assert failed.state is TaskState.FAILED
    assert not reconcile_stopped_task(env.stack.scheduler, event)
    assert env.ti(run_id) == failed


def test_a_stop_event_of_a_try_that_recorded_its_outcome_changes_nothing(env: Env) -> None:
    run_id = env.start()
    env.claim(run_id)
    ti = env.ti(run_id)
    spec = env.stack.scheduler.specs.get("boxed", env.stack.store.get_run("boxed", run_id).version)
    assert env.stack.store.transition(
        "boxed", run_id, spec, "only", -1, expected=TaskState.RUNNING, new=TaskState.SUCCESS,
        try_number=ti.try_number, now=NOW, read_outcome=False, releases=ti.slots, end_date=NOW,
    ).won  # fmt: skip
    done = env.ti(run_id)
    event = env.stopped_event(str(ti.external_executor_id), exit_code=0)
    assert not reconcile_stopped_task(env.stack.scheduler, event)
    assert env.ti(run_id) == done


def test_a_stop_event_of_a_task_slipstream_did_not_start_is_ignored(env: Env) -> None:
    run_id = env.start()
    event = env.stopped_event(str(env.ti(run_id).external_executor_id))
    event["detail"]["overrides"] = {"containerOverrides": [{"name": "other"}]}
    assert not reconcile_stopped_task(env.stack.scheduler, event)
    assert env.ti(run_id).state is TaskState.QUEUED
    # A try of a run that does not exist (another stage's, a deleted run) too.
    stranger = env.stopped_event(str(env.ti(run_id).external_executor_id))
    variable = stranger["detail"]["overrides"]["containerOverrides"][0]["environment"][0]
    variable["value"] = variable["value"].replace(run_id, "manual__nope")
    assert not reconcile_stopped_task(env.stack.scheduler, stranger)
    assert not is_task_stopped({"source": "aws.ecs", "detail": {"lastStatus": "RUNNING"}})


def test_the_reason_names_a_container_that_never_started() -> None:
    detail = {"stoppedReason": "CannotPullContainerError: pull access denied", "containers": []}
    assert stop_reason(detail) == "ECS task stopped: CannotPullContainerError: pull access denied"


class Refusing:
    """The ECS client, but RunTask answers with ``failures`` (or raises) ``times`` times."""

    def __init__(self, client: Any, times: int, throttle: bool = False):
        self.client, self.times, self.throttle, self.calls = client, times, throttle, 0

    def run_task(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > self.times:
            return self.client.run_task(**kwargs)
        if self.throttle:
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, "RunTask")
        return {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY", "detail": "no room"}]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_refused_start_is_tried_again_with_backoff_using_no_retry(env: Env) -> None:
    refusing = Refusing(env.ecs, times=2, throttle=True)
    env.executor._client = refusing
    run_id = env.start(retries=0)
    assert env.ti(run_id).state is TaskState.QUEUED and refusing.calls == 1
    delays = [delay for _, delay in env.stack.queue.pending]
    assert delays == [backoff_seconds(1)] == [40]
    env.stack.settle()
    ti = env.ti(run_id)
    assert refusing.calls == 3
    assert (ti.state, ti.try_number) == (TaskState.QUEUED, 1)
    assert ti.external_executor_id is not None
    assert env.stack.clock() == NOW + dt.timedelta(seconds=40 + 80)


def test_a_start_refused_every_time_fails_the_try_with_the_ecs_reason(env: Env) -> None:
    refusing = Refusing(env.ecs, times=100)
    env.executor._client = refusing
    run_id = env.start(retries=0)
    env.stack.settle()
    ti = env.ti(run_id)
    assert refusing.calls == START_ATTEMPTS
    assert ti.state is TaskState.FAILED
    assert ti.error is not None and ti.error.startswith(f"not started after {START_ATTEMPTS} ")
    assert "RESOURCE:MEMORY no room" in ti.error
    assert env.stack.clock() == NOW + dt.timedelta(seconds=40 + 80 + 160 + 320)
    # A late or redelivered backoff timer finds nothing to start.
    assert env.stack.store.get_run("boxed", run_id).state.finished


def test_marking_a_running_ecs_try_failed_stops_its_container(env: Env) -> None:
    run_id = env.start()
    env.claim(run_id)
    ti = env.ti(run_id)
    run = env.stack.store.get_run("boxed", run_id)
    spec = env.stack.scheduler.specs.get("boxed", run.version)
    done = Interventions(env.stack.scheduler).mark(run, spec, [ti], TaskState.FAILED, dry_run=False)
    assert [c.before.key for c in done] == [("only", -1)]
    task = env.task(str(ti.external_executor_id))
    assert task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == "Slipstream: only marked failed"


def test_the_api_shows_the_task_arn_as_the_try_hostname(env: Env) -> None:
    from chalicelib.api.routes.task_instances import ti_response

    class NoVersions:
        display_name = "boxed"

        def __call__(self, version: str) -> None:
            return None

    run_id = env.start()
    ti = env.ti(run_id)
    run = env.stack.store.get_run("boxed", run_id)
    spec = env.stack.scheduler.specs.get("boxed", run.version)
    shown = ti_response(spec, run, ti, NoVersions())  # type: ignore[arg-type]
    assert shown.hostname == ti.external_executor_id and shown.executor == "ecs"


def test_a_lost_backoff_timer_leaves_the_try_to_the_reaper(env: Env) -> None:
    refusing = Refusing(env.ecs, times=1)
    env.executor._client = refusing
    run_id = env.start()
    env.stack.queue.pending.clear()  # the backoff message is lost
    env.stack.clock.advance(backoff_seconds(1))
    assert env.stack.scheduler.tick().tries_redispatched == []  # not before its timeout
    env.stack.clock.advance(env.stack.scheduler.heartbeat_timeout.total_seconds() + 1)
    assert env.stack.scheduler.tick().tries_redispatched == [f"{run_id}/only"]
    ti = env.ti(run_id)
    assert (ti.state, ti.try_number, refusing.calls) == (TaskState.QUEUED, 1, 2)
    assert ti.external_executor_id is not None
