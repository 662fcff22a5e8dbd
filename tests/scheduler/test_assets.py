"""Asset events start the runs of the DAGs that wait for them (DynamoDB on moto)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest
from moto import mock_aws

from chalicelib.core.assets import asset_id
from chalicelib.core.runs import RunType
from chalicelib.core.states import DagRunState
from chalicelib.deploy.asset_index import index_assets
from chalicelib.scheduler.assets import AssetService
from chalicelib.scheduler.event_router import EventRouter
from chalicelib.sdk import DAG, Asset, AssetAlias, Param, task
from chalicelib.store.assets import AssetStore
from operators.empty import EmptyOperator
from tests.scheduler.harness import FakeClock, Stack
from tests.store.conftest import make_dynamo_store, store_settings

START = pendulum.datetime(2024, 1, 1, tz="UTC")
ORDERS, USERS = Asset("s3://lake/orders"), Asset("s3://lake/users")
SEEN: dict[str, Any] = {}


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        store = make_dynamo_store(store_settings())
        s = Stack(store=store, clock=FakeClock(dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)))
        s.deps.assets = AssetService(AssetStore(store.models.asset), s.scheduler, clock=s.clock)
        SEEN.clear()
        yield s


def _deploy(stack: Stack, *dags: DAG, paused: bool = False) -> None:
    specs = [stack.deploy(d, paused=paused) for d in dags]
    index_assets(stack.deps.assets.store, specs, [], stack.clock())


def _producer() -> DAG:
    with DAG("producer", schedule=None, start_date=START) as dag:
        EmptyOperator(task_id="write", outlets=[ORDERS])
    return dag


def _consumer(schedule: Any) -> DAG:
    with DAG("consumer", schedule=schedule, start_date=START) as dag:

        @task
        def read(triggering_asset_events=None):
            SEEN["events"] = {
                uri: [(e.source_dag_id, e.source_task_id, e.extra) for e in events]
                for uri, events in triggering_asset_events.items()
            }
            SEEN["by_asset"] = len(triggering_asset_events[ORDERS])

        read()
    return dag


def _runs(stack: Stack, dag_id: str) -> list[Any]:
    items = stack.store.models.dag_run.query(dag_id)  # type: ignore[attr-defined]
    return [stack.store.get_run(dag_id, i.run_id) for i in items if not i.run_id.startswith("#")]


def test_a_producer_success_starts_the_consumer_with_its_events(stack: Stack) -> None:
    _deploy(stack, _producer(), _consumer([ORDERS]))
    run, _ = stack.scheduler.trigger("producer")
    stack.settle()
    assert stack.store.get_run("producer", run.run_id).state is DagRunState.SUCCESS
    (consumer_run,) = _runs(stack, "consumer")
    assert consumer_run.run_type is RunType.ASSET_TRIGGERED
    assert consumer_run.run_id.startswith("asset_triggered__")
    assert consumer_run.state is DagRunState.SUCCESS
    assert SEEN["events"] == {ORDERS.uri: [("producer", "write", {})]}
    assert SEEN["by_asset"] == 1
    assert stack.deps.assets.store.queued("consumer") == {}


def test_all_of_waits_for_both_assets(stack: Stack) -> None:
    _deploy(stack, _consumer(ORDERS & USERS))
    service = stack.deps.assets
    first = service.emit(ORDERS.uri, source_key="api:1")
    assert first.runs == [] and _runs(stack, "consumer") == []
    stack.clock.advance(60)
    second = service.emit(USERS.uri, source_key="api:2")
    assert [dag for dag, _ in second.runs] == ["consumer"]
    stack.settle()
    assert sorted(SEEN["events"]) == [ORDERS.uri, USERS.uri]
    assert service.store.queued("consumer") == {}


def test_any_of_runs_per_event_and_a_redelivered_event_runs_nothing(stack: Stack) -> None:
    _deploy(stack, _consumer(ORDERS | USERS))
    service = stack.deps.assets
    when = stack.clock()
    once = service.emit(ORDERS.uri, source_key="s3:evt-1", timestamp=when)
    again = service.emit(ORDERS.uri, source_key="s3:evt-1", timestamp=when)
    assert once.new and not again.new
    assert len(once.runs) == 1 and again.runs == []
    assert len(_runs(stack, "consumer")) == 1
    service.emit(USERS.uri, source_key="s3:evt-2")
    assert len(_runs(stack, "consumer")) == 2


def test_a_paused_consumer_queues_nothing(stack: Stack) -> None:
    _deploy(stack, _consumer([ORDERS]), paused=True)
    emitted = stack.deps.assets.emit(ORDERS.uri, source_key="api:1")
    assert emitted.new and emitted.runs == []
    assert stack.deps.assets.store.queued("consumer") == {}


def test_an_s3_upload_of_a_consumed_key_starts_the_consumer(stack: Stack) -> None:
    _deploy(stack, _consumer([Asset("s3://lake/orders/2024.csv")]))
    router = EventRouter(
        stack.scheduler, _NoRoutes(), "routes", clock=stack.clock, assets=stack.deps.assets
    )
    created = router.route(_s3_event("e-1", "lake", "orders/2024.csv"))
    assert len(created) == 1 and created[0].startswith("asset_triggered__")
    assert router.route(_s3_event("e-1", "lake", "orders/2024.csv")) == []  # redelivered
    assert router.route(_s3_event("e-2", "lake", "orders/other.csv")) == []  # not consumed
    (event,) = stack.deps.assets.store.list_events(
        asset=None, limit=10, offset=0, descending=False
    ).items
    assert event.uri == "s3://lake/orders/2024.csv" and event.extra["from"] == "s3"


class _NoRoutes:
    def get_json(self, key: str) -> Any:
        return {}


def _s3_event(event_id: str, bucket: str, key: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": "aws.s3",
        "detail-type": "Object Created",
        "time": "2024-05-01T12:00:00Z",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def test_outlet_events_set_extras_and_resolve_an_alias(stack: Stack) -> None:
    alias, day = AssetAlias("daily"), Asset("s3://lake/2024-05-01")
    with DAG("emitter", schedule=None, start_date=START) as emitter:

        @task(outlets=[ORDERS, alias])
        def emit(outlet_events=None):
            outlet_events[ORDERS].extra = {"rows": 7}
            outlet_events[alias].add(day, extra={"day": 1})

        emit()
    with DAG("on_alias", schedule=[alias], start_date=START) as on_alias:

        @task
        def seen(triggering_asset_events=None):
            SEEN["alias"] = {
                key: [e.extra for e in events] for key, events in triggering_asset_events.items()
            }
            SEEN["via_alias_key"] = len(triggering_asset_events[alias])

        seen()
    with DAG("on_day", schedule=[day], start_date=START) as on_day:
        EmptyOperator(task_id="go")
    _deploy(stack, emitter, on_alias, on_day, _consumer([ORDERS]))
    stack.scheduler.trigger("emitter")
    stack.settle()
    assert SEEN["events"] == {ORDERS.uri: [("emitter", "emit", {"rows": 7})]}
    assert SEEN["alias"] == {"alias:daily": [{"day": 1}], day.uri: [{"day": 1}]}
    assert SEEN["via_alias_key"] == 1
    (run,) = _runs(stack, "on_day")
    assert run.state is DagRunState.SUCCESS
    row = stack.deps.assets.store.get_asset(asset_id(day.uri))
    assert row is not None and row.uri == day.uri  # known only at run time, registered then


def test_a_failed_producer_emits_nothing(stack: Stack) -> None:
    with DAG("producer", schedule=None, start_date=START) as producer:

        @task(outlets=[ORDERS])
        def write():
            raise ValueError("no data")

        write()
    _deploy(stack, producer, _consumer([ORDERS]))
    stack.scheduler.trigger("producer")
    stack.settle()
    assert _runs(stack, "consumer") == []
    page = stack.deps.assets.store.list_events(asset=None, limit=10, offset=0, descending=False)
    assert page.total == 0


def test_a_consumer_that_cannot_start_does_not_stop_the_others(stack: Stack) -> None:
    with DAG(
        "needs_conf", schedule=[ORDERS], start_date=START, params={"n": Param(type="integer")}
    ) as needs_conf:
        EmptyOperator(task_id="go")
    _deploy(stack, needs_conf, _consumer([ORDERS]))
    emitted = stack.deps.assets.emit(ORDERS.uri, source_key="api:1")
    assert [dag for dag, _ in emitted.runs] == ["consumer"]
    assert _runs(stack, "needs_conf") == []
