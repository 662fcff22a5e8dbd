"""Executors hand a try to compute: the worker Lambda, a Fargate task, or a warm
local process. ``build_executor`` is the one place that knows which class
serves which ``ExecutorSpec.kind`` and how to build its AWS client."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from chalicelib.executors.base import DispatchError, DispatchHandle, Executor
from chalicelib.executors.settings import ExecutorSettings

KINDS = ("lambda", "ecs", "local")

# Configuration an ECS container must see as the Lambda worker does; the try's
# own message travels separately, and an endpoint override never leaves a laptop.
_NOT_FOR_CONTAINERS = frozenset({"SLIPSTREAM_WORKER_MESSAGE", "SLIPSTREAM_ENDPOINT_URL"})


def build_executor(
    kind: str,
    settings: ExecutorSettings | None = None,
    *,
    lambda_client: Any = None,
    ecs_client: Any = None,
    **local_options: Any,
) -> Executor:
    """The executor for ``kind``; clients default to boto3 ones for ``settings``.
    ``local_options`` go to ``LocalExecutor`` (handler, env, on_status, ...)."""
    settings = settings or ExecutorSettings()
    if kind == "lambda":
        from chalicelib.executors.lambda_executor import LambdaExecutor

        client = lambda_client or _client("lambda", settings)
        return LambdaExecutor(client, settings.worker_function)
    if kind == "ecs":
        from chalicelib.executors.ecs_executor import EcsExecutor

        return EcsExecutor(
            ecs_client or _client("ecs", settings), settings, container_environment()
        )
    if kind == "local":
        from chalicelib.executors.local_executor import LocalExecutor

        local_options.setdefault("workers", settings.local_workers)
        return LocalExecutor(**local_options)
    raise DispatchError(f"unknown executor kind {kind!r}; expected one of {', '.join(KINDS)}")


def build_executors(
    kinds: Iterable[str] = ("lambda", "ecs"), settings: ExecutorSettings | None = None, **kw: Any
) -> dict[str, Executor]:
    """The mapping the scheduler takes: kind -> executor."""
    settings = settings or ExecutorSettings()
    return {kind: build_executor(kind, settings, **kw) for kind in kinds}


def container_environment() -> dict[str, str]:
    """The ``SLIPSTREAM_*`` configuration of this process, for ECS containers."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("SLIPSTREAM_") and name not in _NOT_FOR_CONTAINERS
    }


def _client(service: str, settings: ExecutorSettings) -> Any:
    from chalicelib.aws.retries import boto3_client

    return boto3_client(service, region=settings.region, endpoint_url=settings.endpoint_url)


__all__ = [
    "KINDS",
    "DispatchError",
    "DispatchHandle",
    "Executor",
    "ExecutorSettings",
    "build_executor",
    "build_executors",
    "container_environment",
]
