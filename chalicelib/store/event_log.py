"""Who changed what through the API: one item per change, per tenant, by time.

The id is an integer, as Airflow's ``event_log_id`` is, and sorts by time: the
microsecond of the change times 1,000 plus a random part, so two changes in
the same microsecond still get distinct ids (a clash only fails the second
write's condition, and it is retried with another id).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.store.catalog import Page
from chalicelib.store.writes import CONDITION_FAILED


@dataclass(frozen=True)
class LoggedEvent:
    event_log_id: int
    when: dt.datetime
    event: str
    owner: str | None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    extra: str | None = None


class EventLog:
    def __init__(self, model: type[Any], rng: random.Random | None = None):
        self.model = model
        self._rng = rng or random.SystemRandom()

    def record(
        self,
        tenant: str,
        event: str,
        *,
        owner: str | None,
        when: dt.datetime,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        map_index: int | None = None,
        try_number: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> LoggedEvent:
        micros = int(when.timestamp() * 1_000_000)
        for _ in range(5):
            eid = micros * 1000 + self._rng.randrange(1000)
            item = self.model(
                tenant,
                eid,
                when=when,
                event=event,
                owner=owner,
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                try_number=try_number,
                extra=None if extra is None else json.dumps(extra, sort_keys=True, default=str),
            )
            try:
                item.save(condition=self.model.eid.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == CONDITION_FAILED:
                    continue
                raise
            return _event(item)
        raise RuntimeError("could not find a free event log id")  # 5 clashes in one microsecond

    def get(self, tenant: str, event_log_id: int) -> LoggedEvent | None:
        found = list(self.model.query(tenant, self.model.eid == event_log_id, limit=1))
        return _event(found[0]) if found else None

    def list(self, tenant: str, *, limit: int, offset: int, descending: bool) -> Page:
        rows = self.model.query(tenant, scan_index_forward=not descending)
        page: list[LoggedEvent] = []
        for index, item in enumerate(rows):
            if index >= offset + limit:
                break
            if index >= offset:
                page.append(_event(item))
        return Page(page, self.model.count(tenant))


def _event(item: Any) -> LoggedEvent:
    return LoggedEvent(
        event_log_id=int(item.eid),
        when=item.when,
        event=item.event,
        owner=item.owner,
        dag_id=item.dag_id,
        run_id=item.run_id,
        task_id=item.task_id,
        map_index=None if item.map_index is None else int(item.map_index),
        try_number=None if item.try_number is None else int(item.try_number),
        extra=item.extra,
    )
