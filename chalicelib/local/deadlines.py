"""Deadline alerts in ``dags test`` / ``dag.test()``: judged once the run has ended.

The local run has no tick, so its deadlines are judged when it ends, against
the run's own (virtual) clock, with the rule the tick uses: a run that ended
after its deadline missed it, and the alert's callback runs once, in this
process, as DAG callbacks do here. ``DAGRUN_QUEUED_AT`` counts from the run's
start (a test run is queued and started at once). A run that overruns does not
call the callback at the very moment of the deadline, only when it ends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from chalicelib.core.deadlines import deadline_time
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec
from chalicelib.runtime.deadline_callbacks import call_deadline_callback


@dataclass(frozen=True)
class MissedDeadline:
    index: int
    deadline_time: dt.datetime
    callback: str
    callback_ok: bool

    def __str__(self) -> str:
        outcome = "ran" if self.callback_ok else "failed"
        return (
            f"missed deadline {self.index} at {self.deadline_time.isoformat()} "
            f"(callback {self.callback} {outcome})"
        )


def judge_at_end(dag: Any, spec: DagSpec, run: DagRun) -> list[MissedDeadline]:
    """The deadlines the ended ``run`` missed; each one's callback has been called."""
    missed: list[MissedDeadline] = []
    ended = run.end_date
    queued = run.start_date or run.run_after
    for index, alert in enumerate(spec.deadlines):
        when = deadline_time(alert, run, queued_at=queued)
        if when is None or ended is None or ended <= when:
            continue
        ok = call_deadline_callback(dag.deadline[index], run, index, when)
        missed.append(MissedDeadline(index, when, alert.callback, ok))
    return missed
