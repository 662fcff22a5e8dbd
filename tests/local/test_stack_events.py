"""S3 uploads and custom events start DAG runs on the local stack by themselves.

Nothing here hand-builds a queue message: a plain ``put_object`` or
``put_events`` against moto goes through the EventBridge rules the stack
wires as infra/stack.yaml does, into the scheduler queue, to the event
router. Waits are on the stack's own notifications, never on a sleep.
"""

from __future__ import annotations

import json
import logging
import textwrap

import pytest

from chalicelib import wiring
from chalicelib.core.runs import DagRun
from chalicelib.local.stack import LocalStack
from chalicelib.store.catalog import Catalog

WATCHERS = """
from chalicelib.sdk import DAG, EventPattern, S3Event, task

with DAG("on_upload", schedule=S3Event("drop-zone", prefix="in/")):

    @task
    def noted(dag_run=None) -> str:
        return dag_run.conf["event"]["detail"]["object"]["key"]

    noted()

with DAG("on_order", schedule=EventPattern({"source": ["acme.shop"], "detail-type": ["order"]})):

    @task
    def order(dag_run=None) -> str:
        return dag_run.conf["event"]["detail"]["order_id"]

    order()
"""

BUS = "slipstream-local"  # the local stack's Slipstream bus (SLIPSTREAM_EVENT_BUS)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("watchers")
    (project / "dags").mkdir()
    (project / "dags" / "watchers.py").write_text(textwrap.dedent(WATCHERS))
    with LocalStack(workers=1, tick_seconds=3600) as running:
        report = running.deploy(project)
        assert report.ok, report.problems
        yield running


def _runs(dag_id: str) -> list[DagRun]:
    page = Catalog(wiring.state_store()).list_runs(dag_id, limit=100, offset=0, descending=False)
    return [stored.run for stored in page.items]


def _runs_for(dag_id: str, key: str) -> list[DagRun]:
    runs = [wiring.state_store().get_run(dag_id, r.run_id) for r in _runs(dag_id)]
    return [
        r
        for r in runs
        if r is not None
        and r.conf.get("event", {}).get("detail", {}).get("object", {}).get("key") == key
    ]


def _no_traceback(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def _dead_letters() -> int:
    """Messages on the dead-letter queue (moto's state is the process's: other
    tests' stacks may have left some, so tests compare counts)."""
    sqs = wiring.client("sqs")
    url = sqs.get_queue_url(QueueName="slipstream-local-scheduler-dlq")["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(counts.get(n, 0)) for n in names)


def test_an_upload_under_the_prefix_starts_one_run(
    stack: LocalStack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="slipstream")
    dead = _dead_letters()
    s3 = wiring.client("s3")
    s3.put_object(Bucket="drop-zone", Key="in/orders.csv", Body=b"id\n1\n")

    (run,) = stack.wait_until(lambda: _runs_for("on_upload", "in/orders.csv") or None, 60, "a run")
    assert run.run_id.startswith("event__")
    assert run.run_id == f"event__{run.conf['event']['id']}"
    assert run.conf["event"]["detail-type"] == "Object Created"
    stack.wait_for_queue_drained()
    # S3 (as moto plays it) also sent "Object Tags Added": no rule matches it.
    assert len(_runs_for("on_upload", "in/orders.csv")) == 1
    assert stack.wait_for_run("on_upload", run.run_id, timeout=60).state.value == "success"
    assert _dead_letters() == dead
    _no_traceback(capfd, caplog)


def test_each_upload_starts_its_own_run(stack: LocalStack) -> None:
    """S3 gives each event its own id (moto alone gives them all the same one,
    which would make every upload after the first a duplicate)."""
    s3 = wiring.client("s3")
    for key in ("in/day-1.csv", "in/day-2.csv"):
        s3.put_object(Bucket="drop-zone", Key=key, Body=b"id\n1\n")
    for key in ("in/day-1.csv", "in/day-2.csv"):
        stack.wait_until(lambda k=key: _runs_for("on_upload", k) or None, 60, f"a run for {key}")
    stack.wait_for_queue_drained()
    assert (
        len(_runs_for("on_upload", "in/day-1.csv"))
        == len(_runs_for("on_upload", "in/day-2.csv"))
        == 1
    )


def test_an_upload_outside_the_prefix_starts_none(
    stack: LocalStack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="slipstream")
    dead = _dead_letters()
    before = len(_runs("on_upload"))
    wiring.client("s3").put_object(Bucket="drop-zone", Key="out/orders.csv", Body=b"x")

    # S3 sent it (every upload of a watched bucket) and the router let it go.
    stack.wait_until(
        lambda: [r for r in caplog.records if "matches no DAG" in r.getMessage()] or None,
        60,
        "the upload's event to be handled",
    )
    stack.wait_for_queue_drained()
    assert len(_runs("on_upload")) == before
    assert _runs_for("on_upload", "out/orders.csv") == []
    assert _dead_letters() == dead
    _no_traceback(capfd, caplog)


def _put_order(order_id: str, source: str = "acme.shop") -> str:
    answer = wiring.client("events").put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": source,
                "DetailType": "order",
                "Detail": json.dumps({"order_id": order_id}),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0, answer
    return str(answer["Entries"][0]["EventId"])


def test_an_event_on_the_bus_starts_its_dag_once_even_when_delivered_twice(
    stack: LocalStack,
) -> None:
    event_id = _put_order("o-1")
    run_id = f"event__{event_id}"
    run = stack.wait_for_run("on_order", run_id, timeout=60)
    assert run.state.value == "success"
    assert run.conf["event"]["detail"] == {"order_id": "o-1"}

    # SQS delivers at least once: the same envelope again creates nothing.
    runs_before = len(_runs("on_order"))
    sqs = wiring.client("sqs")
    queue = sqs.get_queue_url(QueueName="slipstream-local-scheduler")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(run.conf["event"]))
    stack.wait_for_queue_drained()
    assert len(_runs("on_order")) == runs_before
    assert [r.run_id for r in _runs("on_order")].count(run_id) == 1


def test_an_event_no_dag_waits_for_is_ignored_cleanly(
    stack: LocalStack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="slipstream")
    dead = _dead_letters()
    counts = {dag_id: len(_runs(dag_id)) for dag_id in ("on_upload", "on_order")}
    event_id = _put_order("o-2", source="someone.else")

    stack.wait_until(
        lambda: [r for r in caplog.records if event_id in r.getMessage()] or None,
        60,
        "the event to be handled",
    )
    stack.wait_for_queue_drained()
    (line,) = [r.getMessage() for r in caplog.records if event_id in r.getMessage()]
    assert "matches no DAG" in line
    assert {dag_id: len(_runs(dag_id)) for dag_id in counts} == counts
    assert _dead_letters() == dead
    _no_traceback(capfd, caplog)


def test_buckets_watched_and_rules_wired_as_infra_does(stack: LocalStack) -> None:
    # (moto does not show EventBridgeConfiguration back; the uploads above prove it
    # on). Other tests' stacks in this process may have deployed other watchers.
    assert "drop-zone" in stack.watch_buckets()
    events = wiring.client("events")
    default_rules = events.list_rules(EventBusName="default", NamePrefix="slipstream-")["Rules"]
    bus_rules = events.list_rules(EventBusName=BUS, NamePrefix="slipstream-")["Rules"]
    assert [json.loads(r["EventPattern"]) for r in default_rules] == [
        {"source": ["aws.s3"], "detail-type": ["Object Created"]}
    ]
    assert [json.loads(r["EventPattern"]) for r in bus_rules] == [{"account": ["123456789012"]}]
