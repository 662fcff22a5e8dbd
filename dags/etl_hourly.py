"""Hourly ETL: extract the last hour of sensor readings, summarise, load to CSV.

Shows retries with exponential backoff (the source is "not ready" on the
first try), TaskFlow result passing, multiple_outputs, and a templated
BashOperator. It runs offline: the readings are generated from the data
interval, and the CSV goes to $SLIPSTREAM_DEMO_OUT (default: a temp folder).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import timedelta

import pendulum

from chalicelib.sdk import DAG, Param, task
from operators.bash import BashOperator

OUT_DIR = os.environ.get(
    "SLIPSTREAM_DEMO_OUT", os.path.join(tempfile.gettempdir(), "slipstream-demo")
)

with DAG(
    "etl_hourly",
    display_name="Hourly sensor ETL",
    description="Extract an hour of readings, summarise them, append to a CSV.",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=5),  # short, so `make demo` shows a retry quickly
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=5),
    },
    params={"site": Param("plant-7", type="string", description="Which site to read")},
    tags=["example", "etl"],
) as dag:

    @task
    def wait_for_source(ti=None, data_interval_end=None) -> str:
        # The upstream export lands a little late: the first try finds nothing.
        if ti.try_number < 2:
            raise RuntimeError(f"export for {data_interval_end} not there yet")
        return f"export-{data_interval_end:%Y%m%dT%H}"

    @task
    def extract(export: str, data_interval_start=None, params=None) -> list[dict]:
        seed = int(hashlib.sha256(f"{export}{params['site']}".encode()).hexdigest(), 16)
        readings = []
        for minute in range(0, 60, 5):
            value = 20 + (seed >> minute) % 100 / 10
            at = data_interval_start.add(minutes=minute)
            readings.append({"at": at.isoformat(), "celsius": round(value, 1)})
        return readings

    @task(multiple_outputs=True)
    def transform(readings: list[dict]) -> dict:
        values = [r["celsius"] for r in readings]
        return {
            "count": len(values),
            "mean": round(sum(values) / len(values), 2),
            "max": max(values),
        }

    stats = transform(extract(wait_for_source()))

    load = BashOperator(
        task_id="load",
        bash_command="""
            set -euo pipefail
            count="{{ ti.xcom_pull(task_ids='transform', key='count') }}"
            mean="{{ ti.xcom_pull(task_ids='transform', key='mean') }}"
            mkdir -p "$OUT_DIR"
            echo "{{ ts }},{{ params.site }},$count,$mean" >> "$OUT_DIR/{{ ds_nodash }}.csv"
            echo "loaded $count readings for {{ data_interval_start }}"
        """,
        env={"OUT_DIR": OUT_DIR},
        append_env=True,
    )
    stats >> load
