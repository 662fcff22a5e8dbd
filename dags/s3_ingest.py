"""Event-driven ingest: a CSV landing under orders/ in the landing bucket starts a run.

The S3 "Object Created" event reaches the scheduler through EventBridge and
its queue; the run's conf carries the event, so the tasks know which object
to load. Triggered by hand (or by `slipstream dags test`), it falls back to
the `key` param.
"""

from __future__ import annotations

import pendulum

from chalicelib.sdk import DAG, S3Event, task

with DAG(
    "s3_ingest",
    description="Load each orders CSV as soon as it lands.",
    schedule=S3Event("landing-zone", prefix="orders/", suffix=".csv"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={"key": "orders/sample.csv"},
    tags=["example", "events"],
) as dag:

    @task
    def object_key(dag_run=None, params=None) -> str:
        event = (dag_run.conf or {}).get("event")
        return event["detail"]["object"]["key"] if event else params["key"]

    @task(retries=2)
    def ingest(key: str) -> dict:
        table = key.split("/", 1)[1].removesuffix(".csv").replace("-", "_")
        return {"key": key, "table": f"staging.{table}"}

    ingest(object_key())
