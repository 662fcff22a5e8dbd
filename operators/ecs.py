"""``EcsRunTaskOperator``: run any container image as a task, on ECS (Fargate or EC2).

Arguments and templated fields are those of Airflow's amazon provider. The
operator starts the task definition with ``run_task``, pushes the task's ARN
as the ``ecs_task_arn`` XCom, and (``wait_for_completion=True``, the default)
checks ``describe_tasks`` every ``waiter_delay`` seconds until the task stops,
then fails the try if the task could not start or any container stopped with
a non-zero exit code, naming the container, its exit code and reason.

``deferrable=True`` (Slipstream's default) waits as a rescheduled sensor does:
each check is a short worker invocation and in between the try sits
``up_for_reschedule`` holding no worker, so an hour-long container costs
minutes of Lambda, not an hour. ``deferrable=False`` polls inside the worker,
as Airflow's non-deferrable operator does (bounded by the try's timeout).

Re-delivery: every try tags its task ``startedBy`` with a stable id of the try
(dag, task, run, map index, try number). With ``reattach=True`` a try that
finds a task it started (a worker that died and was replaced) waits for that
one, or reads its exit codes if it has stopped, instead of starting a second
container.

Differences from Airflow, documented in docs/operators.md: ``deferrable``
defaults to True (Airflow's default is False and needs a triggerer), and
CloudWatch log fetching (``awslogs_*``) is not implemented, so the result is
always None.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from chalicelib.sdk import clock
from chalicelib.sdk.exceptions import TaskFailed, TaskRescheduled
from operators.aws_base import AWS_TEMPLATE_FIELDS, AwsBaseOperator

_task_log = logging.getLogger("slipstream.task")


class EcsTaskFailed(TaskFailed):
    """The ECS task did not start, or a container exited non-zero; retries apply."""

    def __init__(self, message: str) -> None:
        super().__init__(message, non_retryable=False)


class EcsRunTaskOperator(AwsBaseOperator):
    template_fields = (
        "task_definition",
        "cluster",
        "overrides",
        "launch_type",
        "capacity_provider_strategy",
        "volume_configurations",
        "group",
        "placement_constraints",
        "placement_strategy",
        "platform_version",
        "network_configuration",
        "tags",
        "propagate_tags",
        "reattach",
        "wait_for_completion",
        *AWS_TEMPLATE_FIELDS,
    )
    template_fields_renderers = {
        "overrides": "json",
        "network_configuration": "json",
        "tags": "json",
    }
    client_type = "ecs"
    # How the operator waits between polls; tests replace it so no time passes.
    sleep: ClassVar[Callable[[float], None]] = staticmethod(time.sleep)

    def __init__(
        self,
        *,
        task_definition: str,
        cluster: str,
        overrides: Mapping[str, Any] | None = None,
        launch_type: str = "EC2",
        capacity_provider_strategy: Sequence[Mapping[str, Any]] | None = None,
        volume_configurations: Sequence[Mapping[str, Any]] | None = None,
        group: str | None = None,
        placement_constraints: Sequence[Mapping[str, Any]] | None = None,
        placement_strategy: Sequence[Mapping[str, Any]] | None = None,
        platform_version: str | None = None,
        network_configuration: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        propagate_tags: str | None = None,
        reattach: bool = False,
        wait_for_completion: bool = True,
        waiter_delay: float = 6,
        waiter_max_attempts: int = 1_000_000,
        deferrable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.task_definition = task_definition
        self.cluster = cluster
        self.overrides = dict(overrides or {})
        self.launch_type = launch_type
        self.capacity_provider_strategy = capacity_provider_strategy
        self.volume_configurations = volume_configurations
        self.group = group
        self.placement_constraints = placement_constraints
        self.placement_strategy = placement_strategy
        self.platform_version = platform_version
        self.network_configuration = network_configuration
        self.tags = dict(tags or {})
        self.propagate_tags = propagate_tags
        self.reattach = reattach
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable = bool(deferrable)
        self.arn: str | None = None
        self._client: Any = None

    def execute(self, context: Mapping[str, Any]) -> None:
        self._client = self.hook.get_client_type("ecs")
        if self.deferrable and self.wait_for_completion:
            return self._check_deferred(context)
        started_by = started_by_id(context)
        arn = self._running_task(started_by) if self.reattach else None
        if arn is None:
            arn = self._start(started_by)
        else:
            _task_log.info("reattached to ECS task %s", arn)
        self.arn = arn
        context["ti"].xcom_push(key="ecs_task_arn", value=arn)
        if not self.wait_for_completion:
            return None
        task = self._wait(arn)
        check_stopped_task(task)
        _task_log.info("ECS task %s succeeded", arn)
        return None

    def _check_deferred(self, context: Mapping[str, Any]) -> None:
        """One check of the wait: start the container at the first, then look at it
        and reschedule until it stops. Every check first looks for the container
        this try started (``startedBy`` names the try), so a check run twice, or
        a worker that died after ``run_task``, never starts a second one."""
        ti = context["ti"]
        first_check = ti.get_first_reschedule_date(context)
        started_by = started_by_id(context)
        arn = self._running_task(started_by)
        if arn is None:
            if first_check is not None:
                raise EcsTaskFailed(
                    f"the ECS task this try started (startedBy {started_by}) is gone: "
                    "ECS forgets stopped tasks after about an hour"
                )
            arn = self._start(started_by)
        self.arn = arn
        if first_check is None:
            ti.xcom_push(key="ecs_task_arn", value=arn)
        described = self._client.describe_tasks(cluster=self.cluster, tasks=[arn])
        tasks = described.get("tasks") or []
        if not tasks:
            raise EcsTaskFailed(f"ECS task {arn} is gone: {described.get('failures')}")
        if tasks[0].get("lastStatus") == "STOPPED":
            check_stopped_task(tasks[0])
            _task_log.info("ECS task %s succeeded", arn)
            return None
        now = clock.now()
        budget = dt.timedelta(seconds=self.waiter_delay * self.waiter_max_attempts)
        if first_check is not None and now - first_check >= budget:
            raise EcsTaskFailed(
                f"ECS task {arn} still not stopped after {self.waiter_max_attempts} checks "
                f"{self.waiter_delay}s apart"
            )
        _task_log.info("ECS task %s is %s; next check in %ss", arn, tasks[0].get("lastStatus"),
                       self.waiter_delay)  # fmt: skip
        raise TaskRescheduled(now + dt.timedelta(seconds=self.waiter_delay))

    def _start(self, started_by: str) -> str:
        given: dict[str, Any] = {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "overrides": self.overrides,
            "startedBy": started_by,
            "group": self.group,
            "placementConstraints": self.placement_constraints,
            "placementStrategy": self.placement_strategy,
            "platformVersion": self.platform_version,
            "networkConfiguration": self.network_configuration,
            "propagateTags": self.propagate_tags,
            "volumeConfigurations": self.volume_configurations,
        }
        if self.capacity_provider_strategy:
            given["capacityProviderStrategy"] = self.capacity_provider_strategy
        elif self.launch_type:
            given["launchType"] = self.launch_type
        if self.tags:
            given["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        response = self._client.run_task(**{k: v for k, v in given.items() if v is not None})
        failures = response.get("failures") or []
        if failures or not response.get("tasks"):
            raise EcsTaskFailed(f"ECS could not start {self.task_definition}: {failures}")
        arn = str(response["tasks"][0]["taskArn"])
        _task_log.info("started ECS task %s on cluster %s", arn, self.cluster)
        return arn

    def _running_task(self, started_by: str) -> str | None:
        """A task this try started earlier (reattach): still running, or already stopped,
        in which case its exit codes decide the try without running it again."""
        for status in ("RUNNING", "STOPPED"):
            listed = self._client.list_tasks(
                cluster=self.cluster, startedBy=started_by, desiredStatus=status
            )
            arns = listed.get("taskArns") or []
            if arns:
                return str(arns[0])
        return None

    def _wait(self, arn: str) -> dict[str, Any]:
        for attempt in range(self.waiter_max_attempts):
            described = self._client.describe_tasks(cluster=self.cluster, tasks=[arn])
            tasks = described.get("tasks") or []
            if not tasks:
                raise EcsTaskFailed(f"ECS task {arn} is gone: {described.get('failures')}")
            task: dict[str, Any] = tasks[0]
            if task.get("lastStatus") == "STOPPED":
                return task
            if attempt + 1 < self.waiter_max_attempts:
                type(self).sleep(self.waiter_delay)
        raise EcsTaskFailed(
            f"ECS task {arn} still not stopped after {self.waiter_max_attempts} checks "
            f"{self.waiter_delay}s apart"
        )

    def on_kill(self) -> None:
        """Stop the container when the try is stopped (timeout, kill), as Airflow does."""
        if self._client is not None and self.arn is not None:
            self._client.stop_task(cluster=self.cluster, task=self.arn, reason="Task killed")


def started_by_id(context: Mapping[str, Any]) -> str:
    """A stable id of the try, within ECS's 36-character ``startedBy`` limit."""
    ti = context["ti"]
    key = f"{ti.dag_id}|{ti.task_id}|{ti.run_id}|{ti.map_index}|{ti.try_number}"
    return "slipstream-" + hashlib.sha256(key.encode()).hexdigest()[:25]


def check_stopped_task(task: Mapping[str, Any]) -> None:
    """Airflow's success rules for a stopped task: it started, and every container exited 0."""
    arn = task.get("taskArn")
    reason = str(task.get("stoppedReason") or "")
    if reason.startswith(
        ("Task failed to start", "CannotPullContainerError", "ResourceInitializationError")
    ):
        raise EcsTaskFailed(f"ECS task {arn} failed to start: {reason}")
    for container in task.get("containers") or []:
        name = container.get("name")
        status = container.get("lastStatus")
        exit_code = container.get("exitCode", 1)
        why = container.get("reason") or reason
        if status == "STOPPED" and exit_code != 0:  # no exit code counts as failure (Airflow)
            raise EcsTaskFailed(
                f"ECS task {arn}: container {name} exited with code {exit_code}"
                + (f" ({why})" if why else "")
            )
        if status == "PENDING":
            raise EcsTaskFailed(f"ECS task {arn}: container {name} is still pending: {why}")
        if "error" in str(container.get("reason") or "").lower():
            raise EcsTaskFailed(f"ECS task {arn}: container {name} failed to launch: {why}")
