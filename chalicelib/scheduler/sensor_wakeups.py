"""An S3 upload wakes the rescheduled S3KeySensor tries waiting for its key.

Each waiter matching the key gets an early ``RetryDue``: the engine pokes a
try that is still UP_FOR_RESCHEDULE at once (the same conditional write as its
timer, so a wake-up racing the timer starts one poke) and ignores it
otherwise. The waiter's row is deleted after the decision is applied (a
redelivered event wakes again, harmlessly); an unsatisfied poke writes it
again. Work per upload: one Query of the bucket's waiters, and per matching
waiter one run read and one decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.core.commands import RetryDue
from chalicelib.scheduler.service import Scheduler
from chalicelib.store.s3_watches import S3WatchStore

log = logging.getLogger("slipstream.scheduler")


def created_object(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(bucket, key) of an S3 "Object Created" event, else None."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return None
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = (detail.get("object") or {}).get("key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        return None
    return bucket, key


class SensorWakeups:
    def __init__(self, scheduler: Scheduler, watches: S3WatchStore):
        self.scheduler = scheduler
        self.watches = watches

    def on_event(self, event: Mapping[str, Any]) -> list[str]:
        """Wake the sensors waiting for this upload; returns ``run/task`` of each woken."""
        found = created_object(event)
        if found is None:
            return []
        bucket, key = found
        woken: list[str] = []
        for waiter in self.watches.waiters(bucket):
            if not waiter.wants(bucket, key):
                continue
            run = self.scheduler.store.get_run(waiter.dag_id, waiter.run_id)
            effective = []
            if run is not None:  # else the run was deleted: the row was all that was left
                spec = self.scheduler.specs.get(run.dag_id, run.version)
                wake = RetryDue(waiter.task_id, waiter.map_index, early=True)
                effective = self.scheduler.advance(run, spec, wake)
            self.watches.forget(bucket, waiter)
            if run is not None and effective:
                woken.append(f"{run.run_id}/{waiter.task_id}")
                log.info(
                    "s3://%s/%s woke sensor %s/%s/%s",
                    bucket, key, run.dag_id, run.run_id, waiter.task_id,
                )  # fmt: skip
        return woken
