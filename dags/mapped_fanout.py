"""Fan out over a list only known at run time, then fan back in.

``list_partitions`` decides at run time how many partitions there are;
``process`` is mapped over them (one task instance each) and ``summarise``
gets every result as one list.
"""

from __future__ import annotations

import pendulum

from chalicelib.sdk import DAG, task

with DAG(
    "mapped_fanout",
    description="Process each partition of the day in parallel.",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"partitions": 8},
    tags=["example", "mapping"],
) as dag:

    @task
    def list_partitions(ds=None, params=None) -> list[str]:
        return [
            f"s3://lake/events/dt={ds}/part-{i:04d}.parquet" for i in range(params["partitions"])
        ]

    @task(retries=1)
    def process(path: str, multiplier: int) -> int:
        # Stand-in for real work: a deterministic "row count" per partition.
        return (sum(map(ord, path)) % 1000) * multiplier

    @task
    def summarise(counts: list[int]) -> dict:
        return {"partitions": len(counts), "rows": sum(counts)}

    counts = process.partial(multiplier=10).expand(path=list_partitions())
    summarise(counts)
