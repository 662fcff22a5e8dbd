"""A run whose conf is too big for the message's snapshot still has its DAG's
task role checked against its tenant: the executor reads the run (one GetItem
from the stage's store, on moto here) and refuses like the snapshot path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.core.messages import SNAPSHOT_CONF_BYTES
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import ExecutorSpec
from chalicelib.executors import build_executor
from chalicelib.executors.base import DispatchError
from chalicelib.executors.ecs_executor import EcsExecutor
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import build_models
from chalicelib.store.settings import StoreSettings
from tests.core.simulation import make_spec
from tests.executors.conftest import Recording
from tests.executors.messages import a_run, message

ACME_ROLE = "arn:aws:iam::123456789012:role/slipstream/dev/acme/etl"
GLOBEX_ROLE = "arn:aws:iam::123456789012:role/slipstream/dev/globex/etl"
BIG_CONF = {"rows": ["x" * 100] * (SNAPSHOT_CONF_BYTES // 100 + 5)}


@pytest.fixture
def runs(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoStateStore]:
    """The stage's runs table on moto, as the default reader finds it from the environment."""
    monkeypatch.setenv("SLIPSTREAM_STAGE", "dev")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    settings = StoreSettings()
    models = build_models(settings)
    models.dag_run.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    yield DynamoStateStore(settings, models=models)


def _store(store: DynamoStateStore, run: DagRun) -> None:
    assert store.create_run(run, make_spec({"extract": []}))


def _default_executor(aws: dict[str, Any]) -> tuple[EcsExecutor, Recording]:
    """Built as the scheduler builds it: the run reader is the stage's store."""
    client = Recording(aws["ecs"])
    settings = aws["settings"].model_copy(update={"stage": "dev"})
    executor = build_executor("ecs", settings, ecs_client=client)
    assert isinstance(executor, EcsExecutor)
    return executor, client


def test_a_big_conf_run_of_one_tenant_may_not_run_as_another_tenants_role(
    aws: dict[str, Any], runs: DynamoStateStore
) -> None:
    run = a_run(tenant="acme", conf=BIG_CONF)
    _store(runs, run)
    big = message(run=run)
    assert big.run is None  # the conf left the snapshot out: the message names no tenant
    executor, client = _default_executor(aws)

    with pytest.raises(DispatchError, match="is not a role of tenant 'acme'") as raised:
        executor.dispatch(big, ExecutorSpec(kind="ecs", task_role_arn=GLOBEX_ROLE))
    assert not raised.value.transient
    assert client.calls == []  # refused before ECS is asked anything

    # the same words as for a run whose snapshot names the tenant
    small = message(run=a_run(tenant="acme"))
    with pytest.raises(DispatchError) as snapshot_refusal:
        executor.dispatch(small, ExecutorSpec(kind="ecs", task_role_arn=GLOBEX_ROLE))
    assert str(snapshot_refusal.value) == str(raised.value)


def test_a_big_conf_run_may_run_as_its_own_tenants_role(
    aws: dict[str, Any], runs: DynamoStateStore
) -> None:
    run = a_run(tenant="acme", conf=BIG_CONF)
    _store(runs, run)
    executor, _ = _default_executor(aws)
    handle = executor.dispatch(message(run=run), ExecutorSpec(kind="ecs", task_role_arn=ACME_ROLE))
    (task,) = aws["ecs"].describe_tasks(cluster="slipstream-test", tasks=[handle.ref])["tasks"]
    assert task["overrides"]["taskRoleArn"] == ACME_ROLE


def test_a_run_that_is_gone_is_refused(aws: dict[str, Any], runs: DynamoStateStore) -> None:
    executor, client = _default_executor(aws)
    with pytest.raises(DispatchError, match="the run is gone"):
        executor.dispatch(message(), ExecutorSpec(kind="ecs", task_role_arn=ACME_ROLE))
    assert client.calls == []


def test_an_unreadable_run_is_a_refusal_for_now(aws: dict[str, Any]) -> None:
    def failing(dag_id: str, run_id: str) -> DagRun | None:
        raise RuntimeError("table throttled")

    executor = EcsExecutor(aws["ecs"], aws["settings"], run_reader=failing)
    with pytest.raises(DispatchError, match=r"could not read the run.*throttled") as raised:
        executor.dispatch(message(), ExecutorSpec(kind="ecs", task_role_arn=ACME_ROLE))
    assert raised.value.transient


def test_the_run_is_read_only_without_a_snapshot_or_without_a_role(aws: dict[str, Any]) -> None:
    reads: list[tuple[str, str]] = []

    def reader(dag_id: str, run_id: str) -> DagRun | None:
        reads.append((dag_id, run_id))
        return a_run(tenant="acme")

    executor = EcsExecutor(aws["ecs"], aws["settings"], run_reader=reader)
    as_acme = ExecutorSpec(kind="ecs", task_role_arn=ACME_ROLE)
    executor.dispatch(message(run=a_run(tenant="acme")), as_acme)
    executor.dispatch(message("no_role"), ExecutorSpec(kind="ecs"))
    assert reads == []
    executor.dispatch(message("big"), as_acme)
    assert len(reads) == 1
