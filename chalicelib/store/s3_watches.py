"""Rescheduled S3KeySensor tries waiting for keys, found by the bucket an
upload lands in (runtime.sensor_wakeups, scheduler.sensor_wakeups).

Rows live in the assets table, which already indexes S3 URIs for uploads:

    pk w#<bucket>   sk <dag>#<run>#<task>#<map index>   one waiting try: its keys
    pk w#           sk <bucket>                         buckets that have waiters

So an upload costs one Query of its bucket's waiters, however many sensors
wait elsewhere. A row is rewritten at each unsatisfied poke (a put: idempotent)
and deleted when an upload wakes it; one left by a sensor that finished on its
own interval is dropped by the next upload to that bucket.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.core.s3_keys import KeyPattern

REGISTRY = "w#"


@dataclass(frozen=True)
class Waiter:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    patterns: tuple[KeyPattern, ...]
    sort_key: str

    def wants(self, bucket: str, key: str) -> bool:
        return any(p.matches(bucket, key) for p in self.patterns)


class S3WatchStore:
    def __init__(self, model: type[Any]):
        self.model = model

    def watch(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, patterns: Sequence[KeyPattern]
    ) -> None:
        by_bucket: dict[str, list[KeyPattern]] = {}
        for pattern in patterns:
            by_bucket.setdefault(pattern.bucket, []).append(pattern)
        sk = f"{dag_id}#{run_id}#{task_id}#{map_index}"
        for bucket, wanted in sorted(by_bucket.items()):
            # The registry row first: a waiter is never in a bucket nobody watches.
            self.model(REGISTRY, bucket).save()
            body = json.dumps([p.to_json() for p in wanted], sort_keys=True)
            self.model(
                f"w#{bucket}", sk, sdag=dag_id, srun=run_id, stask=task_id, smap=map_index,
                body=body,
            ).save()  # fmt: skip

    def waiters(self, bucket: str) -> list[Waiter]:
        found: list[Waiter] = []
        for item in self.model.query(f"w#{bucket}"):
            try:
                patterns = tuple(KeyPattern.from_json(p) for p in json.loads(item.body or "[]"))
            except (ValueError, KeyError, TypeError):
                patterns = ()  # unreadable: wakes nothing, dropped like a stale row
            found.append(
                Waiter(
                    dag_id=item.sdag or "",
                    run_id=item.srun or "",
                    task_id=item.stask or "",
                    map_index=int(item.smap if item.smap is not None else -1),
                    patterns=patterns,
                    sort_key=item.sk,
                )
            )
        return found

    def forget(self, bucket: str, waiter: Waiter) -> None:
        self.model(f"w#{bucket}", waiter.sort_key).delete()

    def buckets(self) -> list[str]:
        """Buckets some sensor has waited on (the local stack turns their
        EventBridge notifications on)."""
        return sorted(item.sk for item in self.model.query(REGISTRY))
