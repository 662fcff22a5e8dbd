from __future__ import annotations

from tests.api.served import Served


def test_version_and_health_need_no_key(served: Served) -> None:
    version = served.call("GET", "/version", role=None)
    assert version.status_code == 200, version.text
    assert version.json()["version"]
    health = served.call("GET", "/monitor/health", role=None)
    assert health.status_code == 200
    assert health.json()["metadatabase"]["status"] == "healthy"


def test_dags_list(served: Served) -> None:
    answer = served.call("GET", "/dags")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {d["dag_id"] for d in body["dags"]} == {
        "branching",
        "etl_hourly",
        "mapped_fanout",
        "s3_ingest",
    }
