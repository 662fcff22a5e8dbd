"""Adapters built from the environment: the one place that knows which AWS
client backs which port. Handlers, the worker and the local stack call these;
tests build their adapters directly.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from chalicelib.executors.base import Executor
    from chalicelib.scheduler.queue import SqsDeadLetters, SqsSchedulerQueue
    from chalicelib.scheduler.service import Scheduler
    from chalicelib.secrets.cached import CachedStoreBackend
    from chalicelib.secrets.connection_store import ConnectionStore
    from chalicelib.secrets.variable_store import VariableStore
    from chalicelib.store.dynamodb import DynamoStateStore
    from chalicelib.store.results import DynamoXComStore
    from chalicelib.store.settings import StoreSettings

# Every adapter module is imported where it is first built, not here: each
# Lambda handler imports this module, and a cold start should pay only for the
# adapters that handler uses (bench/cold_start.py).


class RuntimeSettings(BaseSettings):
    """Names of the queue and executors this deployment uses (prefix SLIPSTREAM_)."""

    model_config = SettingsConfigDict(env_prefix="SLIPSTREAM_", extra="ignore")

    stage: str = "dev"
    table_prefix: str = "slipstream"
    queue_url: str | None = None
    queue_name: str = Field(default="", description="Empty: <prefix>-<stage>-scheduler.")
    executors: str = Field(default="lambda,ecs", description="Executor kinds to build.")

    @model_validator(mode="after")
    def _stage_queue(self) -> RuntimeSettings:
        """The stage's own queue (infra/stack.yaml's name), never another stage's."""
        if not self.queue_name:
            self.queue_name = f"{self.table_prefix}-{self.stage}-scheduler"
        return self


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@functools.cache
def store_settings() -> StoreSettings:
    from chalicelib.store.settings import StoreSettings

    return StoreSettings()


def client(service: str) -> Any:
    """A boto3 client with the project's one retry policy (chalicelib.aws.retries)."""
    from chalicelib.aws.retries import boto3_client

    settings = store_settings()
    return boto3_client(service, region=settings.region, endpoint_url=settings.endpoint_url)


@functools.cache
def state_store() -> DynamoStateStore:
    from chalicelib.store.dynamodb import DynamoStateStore
    from chalicelib.store.models import build_models

    settings = store_settings()
    return DynamoStateStore(settings, models=build_models(settings), s3_client=client("s3"))


def scheduler_queue() -> SqsSchedulerQueue:
    from chalicelib.scheduler.queue import SqsSchedulerQueue

    runtime = RuntimeSettings()
    sqs = client("sqs")
    url = runtime.queue_url or sqs.get_queue_url(QueueName=runtime.queue_name)["QueueUrl"]
    return SqsSchedulerQueue(sqs, url)


_dead_letters: SqsDeadLetters | None = None


def dead_letters() -> SqsDeadLetters:
    """Where poison messages of the scheduler queue go (its redrive policy's target)."""
    from chalicelib.scheduler.queue import SqsDeadLetters

    global _dead_letters
    if _dead_letters is None:
        queue = scheduler_queue()
        _dead_letters = SqsDeadLetters(client("sqs"), queue.queue_url)
    return _dead_letters


def executors() -> dict[str, Executor]:
    from chalicelib.executors import build_executors
    from chalicelib.executors.settings import ExecutorSettings

    kinds = [k.strip() for k in RuntimeSettings().executors.split(",") if k.strip()]
    if "relay" in kinds:
        # A local stack's worker process: its hand-off goes back to the stack.
        from chalicelib.executors.relay import RELAY

        return dict.fromkeys(("lambda", "ecs", "local"), RELAY)
    return build_executors([k for k in kinds if k != "local"], ExecutorSettings())


_scheduler: Scheduler | None = None


def scheduler() -> Scheduler:
    """The process's scheduler, built on first use (the local stack installs its own)."""
    from chalicelib.scheduler.service import Scheduler

    global _scheduler
    if _scheduler is None:
        _scheduler = Scheduler(state_store(), scheduler_queue(), executors(), clock=utc_now)
    return _scheduler


def install_scheduler(instance: Scheduler | None) -> None:
    global _scheduler
    _scheduler = instance


def reset() -> None:
    """Forget every adapter built from the environment (tests, a restarted stack)."""
    from chalicelib.secrets import lookup

    global _dead_letters
    install_scheduler(None)
    _dead_letters = None
    # The worker keeps its own adapters while warm; forget them too, without
    # importing the worker's runtime where nothing has used it.
    worker = sys.modules.get("chalicelib.runtime.worker")
    if worker is not None:
        worker.forget_default_deps()
    for cached in (store_settings, state_store, bundle_store, result_model, task_log_store):
        cached.cache_clear()
    lookup.install_backend(None)


def connection_store() -> ConnectionStore:
    """Connections of every tenant in Secrets Manager (the API's connections routes)."""
    from chalicelib.secrets.connection_store import ConnectionStore
    from chalicelib.secrets.settings import SecretsSettings

    return ConnectionStore(client("secretsmanager"), SecretsSettings().prefix)


def variable_store() -> VariableStore:
    """Variables of every tenant in SSM Parameter Store (the API's variables routes)."""
    from chalicelib.secrets.settings import SecretsSettings
    from chalicelib.secrets.variable_store import VariableStore

    return VariableStore(client("ssm"), SecretsSettings().prefix)


def secrets_backend() -> CachedStoreBackend:
    """The cached read path DAG code uses, on this deployment's clients.

    ``chalicelib.secrets.lookup`` builds an equivalent one by itself on first
    use; a process that wants the local stack's endpoint installs this one.
    """
    from chalicelib.secrets.cached import CachedStoreBackend
    from chalicelib.secrets.settings import SecretsSettings

    settings = SecretsSettings()
    return CachedStoreBackend(
        client("secretsmanager"),
        client("ssm"),
        settings.prefix,
        max_age=settings.cache_seconds,
    )


@functools.cache
def bundle_store() -> Any:
    from chalicelib.deploy.bundle_store import S3BundleStore

    return S3BundleStore(store_settings().bucket, client("s3"))


@functools.cache
def result_model() -> type[Any]:
    from chalicelib.store.results import build_result_model

    return build_result_model(store_settings())


def xcom_store(dag_id: str, run_id: str) -> DynamoXComStore:
    from chalicelib.store.results import DynamoXComStore

    return DynamoXComStore(
        dag_id,
        run_id,
        model=result_model(),
        s3_client=client("s3"),
        bucket=store_settings().bucket,
    )


_router: Any = None


def event_router() -> Any:
    """Routes S3 / EventBridge events to DAG runs (routes written by deploy)."""
    global _router
    from chalicelib.deploy.deployer import event_routes_key
    from chalicelib.scheduler.event_router import EventRouter

    sched = scheduler()
    if _router is None or _router.scheduler is not sched:
        _router = EventRouter(
            sched,
            bundle_store(),
            event_routes_key(store_settings().stage),
            clock=utc_now,
            assets=asset_service(sched),
            sensor_wakeups=sensor_wakeups(sched),
        )
    return _router


def s3_watches(sched: Scheduler | None = None) -> Any:
    """Rescheduled S3KeySensor tries waiting for uploads (store/s3_watches.py)."""
    from chalicelib.store.s3_watches import S3WatchStore

    sched = sched or scheduler()
    models = getattr(sched.store, "models", None) or state_store().models
    return S3WatchStore(models.asset)


def sensor_wakeups(sched: Scheduler | None = None) -> Any:
    """Wakes the sensors an S3 upload satisfies (scheduler/sensor_wakeups.py)."""
    from chalicelib.scheduler.sensor_wakeups import SensorWakeups

    sched = sched or scheduler()
    return SensorWakeups(sched, s3_watches(sched))


def asset_service(sched: Scheduler | None = None) -> Any:
    """Records asset events and starts the runs they complete (scheduler/assets.py)."""
    from chalicelib.scheduler.assets import AssetService
    from chalicelib.store.assets import AssetStore

    sched = sched or scheduler()
    # the scheduler's own store's tables (the local stack installs its scheduler)
    models = getattr(sched.store, "models", None) or state_store().models
    return AssetService(AssetStore(models.asset), sched, clock=utc_now)


@functools.cache
def task_log_store() -> Any:
    """Tries' logs in CloudWatch Logs (the worker writes them, the API reads them)."""
    from chalicelib.secrets.secret_masker import mask
    from chalicelib.store.task_logs import TaskLogStore

    # Every line a try writes passes the masker: secrets it read show as ***.
    return TaskLogStore(client("logs"), store_settings().task_logs_group, redact=mask)


def read_try_log(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    *,
    token: str | None = None,
    limit: int = 1000,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a try's log lines and the next page's token (None: no more for now)."""
    lines, next_token = task_log_store().read_try_log(
        dag_id, run_id, task_id, map_index, try_number, token=token, limit=limit
    )
    return lines, next_token


def build_worker_deps(sched: Scheduler | None = None) -> Any:
    from chalicelib.runtime.tenant_credentials import task_credentials_from_environment
    from chalicelib.runtime.worker import WorkerDeps
    from chalicelib.store.usage import CallMeter

    sched = sched or scheduler()
    return WorkerDeps(
        store=sched.store,
        scheduler=sched,
        bundles=bundle_store(),
        xcoms=xcom_store,
        clock=utc_now,
        task_logs=task_log_store(),
        meter=CallMeter,  # each try's AWS calls, reported in its log
        assets=asset_service(sched),
        s3_watches=s3_watches(sched),
        # a stage with a TaskCodeRole runs user code in a child interpreter
        # holding only its tenant's credentials (docs/security.md)
        task_credentials=task_credentials_from_environment(),
    )
