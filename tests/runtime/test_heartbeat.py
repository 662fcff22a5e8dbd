"""The worker's heartbeat keeps beating through a beat AWS refused."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from chalicelib.core.messages import WorkerMessage
from chalicelib.runtime.worker import WorkerDeps, _beat
from chalicelib.store.base import StoreError


class _Beats:
    """A store whose heartbeats answer from a script: an error, alive, then gone."""

    def __init__(self, answers: list[bool | Exception]):
        self.answers = answers
        self.calls = 0

    def heartbeat(self, *args: Any) -> bool:
        answer = self.answers[self.calls]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_failed_beat_is_not_the_last_one() -> None:
    store = _Beats([StoreError("throttled to the end"), True, False])
    deps = WorkerDeps(
        store=store,  # type: ignore[arg-type]
        scheduler=None,  # type: ignore[arg-type]
        bundles=None,  # type: ignore[arg-type]
        xcoms=None,  # type: ignore[arg-type]
        clock=lambda: dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        heartbeat_seconds=0,
    )
    message = WorkerMessage(dag_id="d", run_id="r", task_id="t", try_number=1, version="v")
    _beat(deps, message, threading.Event(), None)
    assert store.calls == 3  # beat on after the error, stopped when the try was gone
