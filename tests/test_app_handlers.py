"""The Chalice entry points, invoked as Lambda would invoke them (chalice.test.Client).

Environment first, then ``import app``: Chalice reads decorator arguments
(the queue name) at import time. AWS is moto in-process; the worker's and
scheduler's dispatches go to the relay executor, and the test invokes the
worker function with each relayed message, as the Lambda executor's async
invoke would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import wiring
from chalicelib.core.states import DagRunState
from chalicelib.executors.relay import RELAY
from tests.aws_faults import AwsFaults

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "slipstream-test-scheduler"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "SLIPSTREAM_STAGE": "apptest",
        "SLIPSTREAM_BUCKET": "slipstream-apptest",
        "SLIPSTREAM_QUEUE_NAME": QUEUE,
        "SLIPSTREAM_EXECUTORS": "relay",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SLIPSTREAM_QUEUE_URL", raising=False)
    wiring.reset()
    RELAY.drain()
    with mock_aws():
        from chalicelib.local.stack import create_resources

        url = create_resources()
        from chalicelib.deploy.deployer import deploy

        report = deploy(
            [str(ROOT / "dags")],
            store=wiring.state_store(),
            bundles=wiring.bundle_store(),
            bundle_root=str(ROOT),
            now=wiring.utc_now(),
            stage="apptest",
            paused_at_creation=False,
        )
        assert report.ok, report.problems
        yield url
    wiring.reset()


def _drain_queue(client: Client, url: str) -> list[dict[str, Any]]:
    sqs = wiring.client("sqs")
    responses = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return responses
        event = client.events.generate_sqs_event(
            message_bodies=[m["Body"] for m in batch], queue_name=QUEUE
        )
        responses.append(client.lambda_.invoke("scheduler_events", event).payload)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


def test_trigger_queue_and_worker_handlers_run_a_dag(aws: str) -> None:
    import app

    with Client(app.app) as client:
        run, _ = wiring.scheduler().trigger("mapped_fanout", conf={"partitions": 3})
        for _ in range(100):
            _drain_queue(client, aws)
            relayed = RELAY.drain()
            if not relayed:
                break
            for message in relayed:
                payload = json.loads(message.model_dump_json())
                result = client.lambda_.invoke("worker", payload).payload
                assert result["claimed"] and result["recorded"], result
        final = wiring.state_store().get_run("mapped_fanout", run.run_id)
        assert final is not None and final.state is DagRunState.SUCCESS


def test_tick_handler_creates_due_runs(aws: str) -> None:
    import app

    with Client(app.app) as client:
        event = client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        result = client.lambda_.invoke("scheduler_tick", event).payload
        # every example DAG has catchup=False: one run each for its latest interval
        assert len(result["runs_created"]) == 3
        again = client.lambda_.invoke("scheduler_tick", event).payload
        assert again["runs_created"] == []


def _ghost_reads_throttled(faults: AwsFaults) -> None:
    """Every read of run ``ghost`` is throttled, through all of botocore's retries."""
    faults.refuse("dynamodb", "GetItem", when=lambda request: b"ghost" in (request.body or b""))


def test_a_throttled_message_fails_only_itself_with_partial_batches(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app

    monkeypatch.setenv("SLIPSTREAM_PARTIAL_BATCH_RESPONSE", "true")
    run, _ = wiring.scheduler().trigger("branching")
    good = json.dumps({"type": "run_created", "dag_id": "branching", "run_id": run.run_id})
    ghost = json.dumps({"type": "run_created", "dag_id": "branching", "run_id": "ghost"})
    with Client(app.app) as client, AwsFaults() as faults:
        _ghost_reads_throttled(faults)
        event = client.events.generate_sqs_event(message_bodies=[ghost, good], queue_name=QUEUE)
        payload = client.lambda_.invoke("scheduler_events", event).payload
    assert len(payload["batchItemFailures"]) == 1
    started = wiring.state_store().get_run("branching", run.run_id)
    assert started is not None and started.state is DagRunState.RUNNING


def test_without_partial_batches_a_failed_message_fails_the_batch(aws: str) -> None:
    import app
    from chalicelib.handlers import BatchFailed

    ghost = json.dumps({"type": "run_created", "dag_id": "branching", "run_id": "ghost"})
    with Client(app.app) as client, AwsFaults() as faults:
        _ghost_reads_throttled(faults)
        event = client.events.generate_sqs_event(message_bodies=[ghost], queue_name=QUEUE)
        with pytest.raises(BatchFailed, match="1 scheduler messages failed"):
            client.lambda_.invoke("scheduler_events", event)


def test_a_poison_message_goes_to_the_dead_letter_queue_at_once(aws: str) -> None:
    import app

    with Client(app.app) as client:
        event = client.events.generate_sqs_event(message_bodies=["not json"], queue_name=QUEUE)
        payload = client.lambda_.invoke("scheduler_events", event).payload
    assert payload == {"batchItemFailures": []}
    sqs = wiring.client("sqs")
    dlq = sqs.get_queue_url(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dlq)["Messages"]] == ["not json"]


def test_worker_rejects_a_malformed_message(aws: str) -> None:
    from pydantic import ValidationError

    import app

    with Client(app.app) as client, pytest.raises(ValidationError, match="run_id"):
        client.lambda_.invoke("worker", {"dag_id": "x"})


def _s3_event(event_id: str, key: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "source": "aws.s3",
            "detail-type": "Object Created",
            "account": "123456789012",
            "region": "us-east-1",
            "time": "2024-06-01T10:00:00Z",
            "resources": ["arn:aws:s3:::landing-zone"],
            "detail": {"bucket": {"name": "landing-zone"}, "object": {"key": key, "size": 12}},
        }
    )


def test_s3_event_starts_the_matching_dag_once(aws: str) -> None:
    import app

    store = wiring.state_store()
    with Client(app.app) as client:
        bodies = [_s3_event("ev-1", "orders/2024-06-01.csv"), _s3_event("ev-2", "tmp/x.bin")]
        event = client.events.generate_sqs_event(message_bodies=bodies, queue_name=QUEUE)
        payload = client.lambda_.invoke("scheduler_events", event).payload
        assert payload["batchItemFailures"] == []
        # the same event delivered again creates no second run
        client.lambda_.invoke(
            "scheduler_events",
            client.events.generate_sqs_event(message_bodies=bodies[:1], queue_name=QUEUE),
        )
        run = store.get_run("s3_ingest", "event__ev-1")
        assert run is not None and run.conf["event"]["detail"]["object"]["key"].startswith(
            "orders/"
        )
        assert store.get_run("s3_ingest", "event__ev-2") is None
        for _ in range(50):
            _drain_queue(client, aws)
            relayed = RELAY.drain()
            if not relayed:
                break
            for message in relayed:
                client.lambda_.invoke("worker", json.loads(message.model_dump_json()))
    final = store.get_run("s3_ingest", "event__ev-1")
    assert final is not None and final.state is DagRunState.SUCCESS
    found, value = wiring.xcom_store("s3_ingest", "event__ev-1").pull("ingest", -1, "return_value")
    assert found and value == {"key": "orders/2024-06-01.csv", "table": "staging.2024_06_01"}


def test_handlers_emit_emf_metrics(aws: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import app

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SlipstreamTest")
    capsys.readouterr()
    with Client(app.app) as client:
        run, _ = wiring.scheduler().trigger("branching")
        _drain_queue(client, aws)
        for message in RELAY.drain():
            client.lambda_.invoke("worker", json.loads(message.model_dump_json()))
        client.lambda_.invoke(
            "scheduler_tick",
            client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            ),
        )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {
        m["Name"] for doc in lines for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"RunsStarted", "SchedulingLag", "Tries_success", "RunsCreated", "TriesReaped"} <= names
    assert run.run_id
