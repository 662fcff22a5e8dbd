"""Deadline alerts (Airflow 3.1's replacement for SLAs): when a run must be done by.

A DAG declares alerts (``DAG(deadline=DeadlineAlert(...))``); the spec keeps each
as a ``DeadlineSpec``. When the scheduler first sees a run, it computes each
alert's deadline time from the run (``deadline_time``) and stores one deadline
item per alert in a time index. The tick reads only the items that came due
(``deadline_due`` <= now) and decides each with ``judge``: a run that finished
by its deadline met it; a run still going (or that finished late) missed it,
and the alert's callback runs once, in a worker.

Pure: no AWS, no user code. The callback is named, never imported, here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from chalicelib.core.runs import DagRun

DEADLINE_CALLBACK_TASK = "__deadline_callback__"
"""Reserved task id of a worker message that runs a missed deadline's callback;
its ``map_index`` is the alert's position in the DAG's ``deadline`` list."""

REDISPATCH_AFTER = dt.timedelta(minutes=5)
"""A missed deadline whose callback no worker has claimed this long after it was
sent is sent again (the first invoke was lost); the worker's claim runs it once."""


class Reference(StrEnum):
    """Airflow's reference classes, by the names Airflow serializes them under."""

    DAGRUN_LOGICAL_DATE = "DagRunLogicalDateDeadline"
    DAGRUN_QUEUED_AT = "DagRunQueuedAtDeadline"
    FIXED_DATETIME = "FixedDatetimeDeadline"


class DeadlineSpec(BaseModel):
    """One alert as the control plane reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: Reference
    fixed: dt.datetime | None = None  # FIXED_DATETIME only (UTC)
    interval: float  # seconds; negative puts the deadline before the reference
    callback: str  # dotted path of the callable, for display and the event log
    callback_kind: Literal["async", "sync"] = "async"
    name: str | None = None


class DeadlineState(StrEnum):
    PENDING = "pending"  # not due yet, or due and not judged yet
    MET = "met"  # the run finished by the deadline
    MISSED = "missed"  # the run was not finished at the deadline


@dataclass(frozen=True)
class Deadline:
    """One alert of one run: its time and what became of it."""

    dag_id: str
    run_id: str
    index: int  # position of the alert in the DAG's deadline list
    deadline_time: dt.datetime
    state: DeadlineState = DeadlineState.PENDING
    missed_at: dt.datetime | None = None
    callback_sent_at: dt.datetime | None = None  # last time its callback was dispatched
    callback_claimed: bool = False  # a worker took the callback (it runs once)
    tenant: str | None = None


def deadline_time(alert: DeadlineSpec, run: DagRun, queued_at: dt.datetime) -> dt.datetime | None:
    """The alert's deadline for ``run``; None when the reference has no value
    (a run without a logical date has no DAGRUN_LOGICAL_DATE deadline, as in Airflow)."""
    if alert.reference is Reference.DAGRUN_LOGICAL_DATE:
        reference = run.logical_date
    elif alert.reference is Reference.DAGRUN_QUEUED_AT:
        reference = queued_at
    else:
        reference = alert.fixed
    if reference is None:
        return None
    return reference.astimezone(dt.UTC) + dt.timedelta(seconds=alert.interval)


Verdict = Literal["wait", "met", "missed", "resend", "done"]


def judge(deadline: Deadline, run: DagRun | None, now: dt.datetime) -> Verdict:
    """What the tick does with a deadline item it found due.

    ``met``: the run ended at or before the deadline (Airflow deletes such a
    deadline); ``missed``: it had not ended by then; ``resend``: missed, its
    callback sent but unclaimed for ``REDISPATCH_AFTER``; ``wait``: not due, or
    its callback is on its way; ``done``: nothing left to do (the run is gone,
    or the callback was claimed).
    """
    if deadline.state is DeadlineState.MET or deadline.callback_claimed:
        return "done"
    if deadline.state is DeadlineState.MISSED:
        sent = deadline.callback_sent_at
        return "resend" if sent is None or now - sent >= REDISPATCH_AFTER else "wait"
    if deadline.deadline_time > now:
        return "wait"
    if run is None:
        return "done"
    if run.state.finished and run.end_date is not None and run.end_date <= deadline.deadline_time:
        return "met"
    return "missed"
