"""Deadline alerts in the scheduler: register a run's deadlines, judge those due.

No always-on process: ``register`` runs when the scheduler first handles a
run's ``RunCreated`` message (redelivered until handled, so a run's deadlines
are never lost), and ``tick`` runs in the minute tick, reading only the
deadlines that came due (store.deadlines.due). A miss is a conditional write
(pending -> missed) that only one tick wins; the winner sends the callback to
a worker (user code never runs here), and the worker's own conditional claim
makes it run once even when the invoke is delivered twice or sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from chalicelib.core.deadlines import (
    DEADLINE_CALLBACK_TASK,
    Deadline,
    DeadlineState,
    deadline_time,
    judge,
)
from chalicelib.core.messages import WorkerMessage
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec, ExecutorSpec
from chalicelib.executors.base import DispatchError
from chalicelib.scheduler.isolation import Failures, isolated

if TYPE_CHECKING:
    from chalicelib.scheduler.service import Scheduler

log = logging.getLogger("slipstream.scheduler.deadlines")


class Deadlines:
    """The scheduler's deadline work; holds no state of its own."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def register(self, run: DagRun, spec: DagSpec) -> int:
        """Store the run's deadlines (once: a repeat finds them). ``DAGRUN_QUEUED_AT``
        counts from now, when the scheduler first sees the queued run."""
        if not spec.deadlines or run.state.finished:
            return 0
        now = self.scheduler.clock()
        created = 0
        for index, alert in enumerate(spec.deadlines):
            when = deadline_time(alert, run, queued_at=now)
            if when is None:
                continue
            deadline = Deadline(run.dag_id, run.run_id, index, when, tenant=run.tenant)
            created += self.scheduler.store.deadlines.register(deadline)
        return created

    def tick(self, now: dt.datetime, failures: Failures | None = None) -> list[str]:
        """Judge the deadlines that are due; returns the ones found missed now."""
        missed: list[str] = []
        for deadline in self.scheduler.store.deadlines.due(now):
            label = f"{deadline.dag_id}/{deadline.run_id}/deadline[{deadline.index}]"
            with isolated(failures, f"judging {label}"):
                if self._judge(deadline, now):
                    missed.append(label)
        return missed

    def _judge(self, deadline: Deadline, now: dt.datetime) -> bool:
        store = self.scheduler.store
        run = store.get_run(deadline.dag_id, deadline.run_id)
        if run is None:
            # The run was deleted: nothing to alert about; the item leaves the index.
            if deadline.state is DeadlineState.PENDING:
                store.deadlines.mark_met(deadline)
            else:
                store.deadlines.claim_callback(deadline.dag_id, deadline.run_id, deadline.index)
            return False
        verdict = judge(deadline, run, now)
        if verdict == "met":
            store.deadlines.mark_met(deadline)
            return False
        if verdict in ("wait", "done"):
            return False
        if verdict == "resend":
            if store.deadlines.mark_resent(deadline, now):
                self._send(run, deadline)
            return False
        spec = self.scheduler.specs.get(run.dag_id, run.version)
        alert = spec.deadlines[deadline.index] if deadline.index < len(spec.deadlines) else None
        extra = {
            "deadline_time": deadline.deadline_time.isoformat(),
            "index": deadline.index,
            "reference": None if alert is None else alert.reference.name,
            "callback": None if alert is None else alert.callback,
            "run_state": run.state.value,
        }
        if not store.deadlines.mark_missed(deadline, now, extra):
            return False  # another tick judged it
        log.warning("run %s/%s missed its deadline %s", run.dag_id, run.run_id, extra)
        self._send(run, deadline)
        return True

    def _send(self, run: DagRun, deadline: Deadline) -> None:
        """Hand the callback to a worker, as DAG callbacks are. A failed send is
        retried by a later tick (``resend``), the item staying in the index."""
        message = WorkerMessage(
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=DEADLINE_CALLBACK_TASK,
            map_index=deadline.index,
            try_number=1,
            version=run.version,
        )
        executors = self.scheduler.executors
        executor = executors.get("lambda") or next(iter(executors.values()), None)
        try:
            if executor is None:
                raise DispatchError("no executor is configured to run deadline callbacks")
            executor.dispatch(message, ExecutorSpec(kind="lambda"))
        except DispatchError as exc:
            log.error(
                "deadline callback %s not sent (a later tick resends): %s", message.label, exc
            )
