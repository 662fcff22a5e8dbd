"""Slipstream's own read-outs: a DAG's event triggers and a version's spec."""

from __future__ import annotations

from chalicelib.core.spec import DagSpec
from tests.api.served import Served


def test_event_triggers_show_what_starts_a_dag(served: Served) -> None:
    answer = served.call("GET", "/slipstream/dags/s3_ingest/eventTriggers", role="viewer")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total_entries"] == len(body["triggers"]) == 1
    trigger = body["triggers"][0]
    assert trigger["type"] == "s3"
    assert trigger["event_pattern"]["source"] == ["aws.s3"]
    none = served.call("GET", "/slipstream/dags/etl_hourly/eventTriggers").json()
    assert none["triggers"] == []


def test_a_versions_spec_is_the_one_the_scheduler_reads(served: Served) -> None:
    answer = served.call("GET", "/slipstream/dags/etl_hourly/dagVersions/1/spec", role="viewer")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    spec = DagSpec.model_validate(body["spec"])
    assert spec.dag_id == "etl_hourly" and spec.content_hash == body["content_hash"]
    assert served.call("GET", "/slipstream/dags/etl_hourly/dagVersions/9/spec").status_code == 404
    other = served.call(
        "GET", "/slipstream/dags/etl_hourly/dagVersions/1/spec", tenant="acme", role="admin"
    )
    assert other.status_code == 404


def test_a_runs_aws_calls_and_their_cost(served: Served) -> None:
    trigger = served.call("POST", "/dags/mapped_fanout/dagRuns", json={"conf": {"partitions": 2}})
    assert trigger.status_code == 200, trigger.text
    run_id = trigger.json()["dag_run_id"]
    served.stack.wait_for_run("mapped_fanout", run_id, timeout=120)

    from urllib.parse import quote

    answer = served.call(
        "GET",
        f"/slipstream/dags/mapped_fanout/dagRuns/{quote(run_id, safe='')}/usage",
        role="viewer",
    )
    assert answer.status_code == 200, answer.text
    usage = answer.json()
    assert usage["tries_metered"] == 2 + 2  # list, two mapped tries, summarise
    assert sum(usage["calls"]["dynamodb"].values()) >= 2 * usage["tries_metered"]
    assert usage["total_calls"] == sum(sum(ops.values()) for ops in usage["calls"].values())
    assert usage["estimated_total_usd"] > 0
    assert usage["estimated_cost_usd"]["dynamodb"] > 0
    other = served.call(
        "GET",
        f"/slipstream/dags/mapped_fanout/dagRuns/{quote(run_id, safe='')}/usage",
        tenant="acme",
    )
    assert other.status_code == 404
