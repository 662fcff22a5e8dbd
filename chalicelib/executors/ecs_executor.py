"""Run tries as Fargate tasks: for work past Lambda's 15 minutes, big memory, or
its own image and IAM role.

A try asking for the stage's image and default size runs the infra stack's
worker task definition (``SLIPSTREAM_WORKER_TASK_DEFINITION``,
``ecs_stack_definition``). Any other (image, cpu, memory) gets a task
definition family named by a hash of everything in it, so a cold scheduler
finds the existing revision instead of registering a new one per start, and a
changed setting never reuses a stale one. The try's message rides in an
environment override; the run-as role of the DAG goes in
``overrides.taskRoleArn``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from chalicelib.core.messages import WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.core.task_roles import task_role_refusal
from chalicelib.executors.base import (
    DispatchError,
    DispatchHandle,
    DispatchUnavailable,
    Executor,
    is_unavailable,
)
from chalicelib.executors.ecs_stack_definition import StackDefinition
from chalicelib.executors.run_reader import RunReader, StoreRunReader
from chalicelib.executors.settings import ExecutorSettings

WORKER_CLI_MODULE = "chalicelib.runtime.worker_cli"
WORKER_MESSAGE_ENV = "SLIPSTREAM_WORKER_MESSAGE"
WORKER_ENTRYPOINT = ("python", "-m", WORKER_CLI_MODULE)
OVERRIDES_LIMIT = 8192
"""ECS's ceiling on a RunTask's overrides, JSON punctuation included."""

# Fargate's valid memory (MiB) per cpu unit: (lowest, highest, step).
FARGATE_MEMORY: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


class EcsTaskStatus(NamedTuple):
    """What the reaper needs to know about a task it started."""

    last_status: str
    exit_code: int | None
    stopped_reason: str | None = None

    @property
    def stopped(self) -> bool:
        return self.last_status == "STOPPED"

    @property
    def died(self) -> bool:
        """Stopped without the worker exiting 0: the try never recorded an outcome
        by itself (a container that never started has no exit code)."""
        return self.stopped and self.exit_code != 0


def try_token(message: WorkerMessage) -> str:
    """64 hex characters naming this try: ECS's clientToken limit, and stable, so a
    repeated dispatch of the same try is the same request to AWS."""
    key = "\x1f".join(
        (
            message.dag_id,
            message.run_id,
            message.task_id,
            str(message.map_index),
            str(message.try_number),
            message.version,
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()


def check_fargate_size(cpu: int, memory: int) -> None:
    """Fail at dispatch with the valid values instead of with AWS's terse refusal."""
    if cpu not in FARGATE_MEMORY:
        raise DispatchError(f"Fargate cpu {cpu} is not one of {sorted(FARGATE_MEMORY)}")
    low, high, step = FARGATE_MEMORY[cpu]
    if not (low <= memory <= high and (memory - low) % step == 0):
        raise DispatchError(
            f"Fargate cpu {cpu} takes memory {low}..{high} MiB in steps of {step}, not {memory}"
        )


def _tag_value(value: str) -> str:
    return _TAG_UNSAFE.sub("_", value)[:256]


class EcsExecutor(Executor):
    kind = "ecs"

    def __init__(
        self,
        client: Any,
        settings: ExecutorSettings,
        environment: Mapping[str, str] | None = None,
        run_reader: RunReader | None = None,
    ) -> None:
        """``environment`` is what every container gets (table names, stage, queue):
        the configuration the Lambda worker has from Chalice. ``run_reader`` finds
        the tenant of a run whose message carries no snapshot (default: the
        stage's store, built on first use)."""
        self._client = client
        self.settings = settings
        self.environment = dict(environment or {})
        self._run_reader = run_reader or StoreRunReader()
        self._definitions: dict[tuple[str, int, int], str] = {}
        self._stack_definition: StackDefinition | None = None
        self._lock = threading.Lock()

    def dispatch(self, message: WorkerMessage, spec: ExecutorSpec) -> DispatchHandle:
        settings = self.settings
        image = spec.image or settings.default_image
        if not image:
            raise DispatchError(
                f"{message.label}: no container image: set executor image on the task "
                "or DAG, or SLIPSTREAM_DEFAULT_IMAGE"
            )
        if not settings.subnets or not settings.security_groups:
            raise DispatchError(
                f"{message.label}: ECS needs SLIPSTREAM_SUBNETS and SLIPSTREAM_SECURITY_GROUPS"
            )
        if spec.task_role_arn:
            self._check_task_role(message, spec.task_role_arn)
        cpu = spec.cpu or settings.default_cpu
        memory = spec.memory or settings.default_memory
        check_fargate_size(cpu, memory)
        role = spec.task_role_arn or settings.task_role_arn
        definition, environment = self._definition_for(image, cpu, memory)
        overrides = self._overrides(environment, message, role)
        if environment and len(json.dumps(overrides)) > OVERRIDES_LIMIT:
            # The stack's definition lacks too much of our environment to carry it
            # with this message: a derived definition holds it instead.
            definition = self.task_definition(image, cpu, memory)
            overrides = self._overrides({}, message, role)
        token = try_token(message)
        tags = {
            "slipstream:dag": message.dag_id,
            "slipstream:run": message.run_id,
            "slipstream:task": message.task_id,
            "slipstream:map-index": str(message.map_index),
            "slipstream:try": str(message.try_number),
        }
        response = self._call(
            "run_task",
            message,
            cluster=settings.ecs_cluster,
            taskDefinition=definition,
            launchType="FARGATE",
            count=1,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(settings.subnets),
                    "securityGroups": list(settings.security_groups),
                    "assignPublicIp": "ENABLED" if settings.assign_public_ip else "DISABLED",
                }
            },
            overrides=overrides,
            startedBy=f"slipstream-{token[:16]}",
            tags=[{"key": k, "value": _tag_value(v)} for k, v in tags.items()],
            clientToken=token,
        )
        failures = response.get("failures") or []
        tasks = response.get("tasks") or []
        if failures or not tasks:
            # RESOURCE:*, capacity, AGENT: ECS answered but will not start it now.
            # Transient: the scheduler backs off and tries again (start_backoff),
            # then fails the try with this reason.
            reasons = "; ".join(
                f"{f.get('reason', '?')} {f.get('detail', '')}".strip() for f in failures
            )
            raise DispatchUnavailable(
                f"ECS did not start {message.label} on {settings.ecs_cluster}: "
                f"{reasons or 'no task returned'}"
            )
        return DispatchHandle(self.kind, tasks[0]["taskArn"])

    def _overrides(
        self, environment: Mapping[str, str], message: WorkerMessage, role: str | None
    ) -> dict[str, Any]:
        variables = {**environment, WORKER_MESSAGE_ENV: message.model_dump_json()}
        overrides: dict[str, Any] = {
            "containerOverrides": [
                {
                    "name": self.settings.container_name,
                    "environment": [{"name": k, "value": v} for k, v in variables.items()],
                }
            ]
        }
        if role:
            overrides["taskRoleArn"] = role
        return overrides

    def _check_task_role(self, message: WorkerMessage, role_arn: str) -> None:
        """Deploy refused another tenant's role already; this catches specs deployed
        before the check. The tenant is the run's: from its snapshot, or read (one
        GetItem) when a big conf left the snapshot out of the message."""
        if message.run is not None:
            tenant = message.run.tenant
        else:
            try:
                run = self._run_reader(message.dag_id, message.run_id)
            except Exception as exc:  # the store's errors: no tenant, no dispatch now
                raise DispatchUnavailable(
                    f"{message.label}: could not read the run to check its task role's "
                    f"tenant: {exc}"
                ) from exc
            if run is None:
                raise DispatchError(
                    f"{message.label}: the run is gone, so its task role's tenant cannot be checked"
                )
            tenant = run.tenant
        refusal = task_role_refusal(
            role_arn,
            stage=self.settings.stage,
            tenant=tenant,
            default_role_arn=self.settings.task_role_arn,
        )
        if refusal is not None:
            raise DispatchError(f"{message.label}: {refusal}")

    def _definition_for(self, image: str, cpu: int, memory: int) -> tuple[str, dict[str, str]]:
        """The definition to run and the environment the try's override adds: the
        stack's (with what it lacks of ours) when the try asks for what it gives,
        else a derived one, which holds our environment already."""
        stack = self.stack_definition()
        if stack is not None and stack.fits(image, cpu, memory):
            return stack.arn, stack.missing_environment(self.environment)
        return self.task_definition(image, cpu, memory), {}

    def stack_definition(self) -> StackDefinition | None:
        """The infra stack's definition, described once per executor; None when the
        stage names none. A failed describe is not cached: the next dispatch asks again."""
        arn = self.settings.worker_task_definition
        if not arn:
            return None
        with self._lock:
            if self._stack_definition is None:
                described = self._call("describe_task_definition", None, taskDefinition=arn)
                self._stack_definition = StackDefinition.from_description(
                    described, self.settings.container_name
                )
            return self._stack_definition

    def stop(self, task_arn: str, reason: str) -> None:
        """Stop a try's container (an operator marked or failed the try): its
        worker's own record then loses its condition and is dropped."""
        self._call(
            "stop_task", None, cluster=self.settings.ecs_cluster, task=task_arn, reason=reason[:255]
        )

    def describe(self, task_arn: str) -> EcsTaskStatus:
        """The task's state for the reaper; ``MISSING`` once ECS has forgotten it
        (about an hour after it stopped), which the reaper treats like death."""
        response = self._call(
            "describe_tasks", None, cluster=self.settings.ecs_cluster, tasks=[task_arn]
        )
        tasks = response.get("tasks") or []
        if not tasks:
            return EcsTaskStatus("MISSING", None, "ECS no longer knows the task")
        task = tasks[0]
        containers = task.get("containers") or []
        ours = [c for c in containers if c.get("name") == self.settings.container_name]
        container = (ours or containers or [{}])[0]
        return EcsTaskStatus(
            task.get("lastStatus", "UNKNOWN"),
            container.get("exitCode"),
            task.get("stoppedReason") or container.get("reason"),
        )

    def task_definition(self, image: str, cpu: int, memory: int) -> str:
        """The ARN of the definition for this shape: cached here, found in ECS, or
        registered, in that order."""
        key = (image, cpu, memory)
        with self._lock:
            cached = self._definitions.get(key)
            if cached is not None:
                return cached
            body = self._definition_body(image, cpu, memory)
            family = body["family"]
            try:
                found = self._client.describe_task_definition(taskDefinition=family)
                arn = found["taskDefinition"]["taskDefinitionArn"]
            except ClientError:
                registered = self._call("register_task_definition", None, **body)
                arn = registered["taskDefinition"]["taskDefinitionArn"]
            self._definitions[key] = arn
            return arn

    def _definition_body(self, image: str, cpu: int, memory: int) -> dict[str, Any]:
        settings = self.settings
        container: dict[str, Any] = {
            "name": settings.container_name,
            "image": image,
            "essential": True,
            "memory": memory,
            "entryPoint": list(WORKER_ENTRYPOINT),
            "environment": [{"name": k, "value": v} for k, v in sorted(self.environment.items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": settings.log_group,
                    "awslogs-region": settings.region,
                    "awslogs-stream-prefix": "slipstream",
                },
            },
        }
        body: dict[str, Any] = {
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": str(cpu),
            "memory": str(memory),
            "containerDefinitions": [container],
        }
        if settings.execution_role_arn:
            body["executionRoleArn"] = settings.execution_role_arn
        if settings.task_role_arn:
            body["taskRoleArn"] = settings.task_role_arn
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        body["family"] = f"{settings.task_family_prefix}-{digest[:16]}"
        return body

    def _call(self, operation: str, message: WorkerMessage | None, **kwargs: Any) -> Any:
        where = f" for {message.label}" if message is not None else ""
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            kind = DispatchUnavailable if is_unavailable(status, code) else DispatchError
            raise kind(
                f"ECS {operation}{where} failed: {code}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise DispatchUnavailable(f"ECS {operation}{where} unreachable: {exc}") from exc
