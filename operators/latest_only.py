"""``LatestOnlyOperator``: let downstream tasks run only in the latest scheduled run.

Airflow 3's rule (providers/standard ``latest_only``): a manually triggered run
always proceeds. A scheduled run proceeds when now falls in
``(window start, end of the next scheduled interval]``, where the window starts
at the run's data interval start (or logical date): the run is the latest one
until its successor becomes due. Otherwise every direct downstream task is
skipped, and the tasks below follow their trigger rules. When the timetable
has no next run (``@once``, past ``end_date``) the run is the last one and
proceeds.

Differences: Slipstream's event-triggered runs (S3 objects, EventBridge
patterns) are not schedule-driven, so they proceed like manual runs; asset-
and backfill-created runs are judged like scheduled ones, as Airflow does.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from chalicelib.core.data_intervals import DataInterval, TimeRestriction
from chalicelib.core.runs import RunType
from chalicelib.sdk.baseoperator import BaseOperator
from operators.python import BranchMixIn

_task_log = logging.getLogger("slipstream.task")
PROCEEDS_ALWAYS = frozenset({RunType.MANUAL.value, RunType.EVENT.value})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LatestOnlyOperator(BranchMixIn, BaseOperator):
    """Skips its direct downstream tasks unless this is the latest scheduled run."""

    # The time the check compares against; tests replace it.
    clock: ClassVar[Callable[[], dt.datetime]] = staticmethod(_utcnow)

    def execute(self, context: Mapping[str, Any]) -> Any:
        return self.do_branch(context, self.choose_branch(context))

    def choose_branch(self, context: Mapping[str, Any]) -> list[str]:
        downstream = sorted(self.downstream_task_ids)
        dag_run = context["dag_run"]
        if str(dag_run.run_type) in PROCEEDS_ALWAYS:
            _task_log.info("Manually triggered DAG_Run: allowing execution to proceed.")
            return downstream
        window = self.compare_dates(dag_run)
        if window is None:
            _task_log.info("Last scheduled execution: allowing execution to proceed.")
            return downstream
        now = type(self).clock()
        left, right = window
        _task_log.info(
            "Checking latest only with left_window: %s right_window: %s now: %s", left, right, now
        )
        if not left < now <= right:
            _task_log.info("Not latest execution, skipping downstream.")
            return []
        _task_log.info("Latest, allowing execution to proceed.")
        return downstream

    def compare_dates(self, dag_run: Any) -> tuple[dt.datetime, dt.datetime] | None:
        """(start of this run's window, end of the next scheduled interval), or None."""
        dag = self.get_dag()
        if dag is None:
            return None
        timetable = dag.timetable
        at = dag_run.logical_date or dag_run.run_after
        current = DataInterval(
            start=dag_run.data_interval_start or at, end=dag_run.data_interval_end or at
        )
        now = type(self).clock()
        before = timetable.next_dagrun_info(
            last_automated_data_interval=current,
            restriction=TimeRestriction(
                earliest=None, latest=current.end - dt.timedelta(microseconds=1), catchup=True
            ),
            now=now,
        )
        left = before.data_interval.end if before is not None else current.start
        following = timetable.next_dagrun_info(
            last_automated_data_interval=current,
            restriction=TimeRestriction(earliest=current.end, latest=None, catchup=True),
            now=now,
        )
        if following is None:
            return None
        return left, following.data_interval.end
