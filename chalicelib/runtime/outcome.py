"""What a try is asked to do and what came of it, and the outcome of a try
that AWS, not the task, ended (an infrastructure failure)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.core.retries import decide_after_infrastructure_failure
from chalicelib.core.runs import DagRun
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.runtime.outlets import OutletEvent
from chalicelib.runtime.timeout import TryCancel, timeout_message
from chalicelib.sdk.exceptions import TaskTimeout
from chalicelib.secrets import secret_masker

logger = logging.getLogger("slipstream.task")

_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class TryRequest:
    """One try to run: the imported DAG, its spec, the run, and which instance."""

    dag: Any  # the SDK DAG object, imported from the pinned bundle
    spec: DagSpec
    run: DagRun
    task_id: str
    map_index: int = -1
    try_number: int = 1  # 1-based: the try being run
    tenant: str | None = None  # whose connections and variables the try reads
    retry_base: int = 0  # tries before the last clear (TaskInstance.retry_base)
    infra_failures: int = 0  # tries ended by AWS so far (TaskInstance.infra_failures)
    first_poke_at: dt.datetime | None = None  # a rescheduled sensor's first poke in this try
    # Lets the caller stop the try from another thread (its run ended, it was marked).
    cancel: TryCancel | None = None
    # An asset-triggered run's events, read when the task first asks (runtime.outlets).
    triggering_asset_events: Mapping[Any, list[Any]] | None = None


@dataclass(frozen=True)
class TryResult:
    state: TaskState  # SUCCESS, FAILED, UP_FOR_RETRY, UP_FOR_RESCHEDULE or SKIPPED
    start_date: dt.datetime
    end_date: dt.datetime
    next_try_at: dt.datetime | None = None
    retry_delay_seconds: float | None = None
    error: str | None = None  # one line: "ExceptionType: message"
    traceback: str | None = None
    # len() of a list/tuple/dict result; when downstream maps over one key of a
    # multiple_outputs result, that key's length (what the engine sizes the map by).
    result_length: int | None = None
    rendered_map_index: str | None = None  # the task's map_index_template, rendered
    rendered_fields: str | None = None  # JSON of the try's rendered template fields
    skip_downstream: tuple[str, ...] | None = None
    # An infrastructure failure (AWS, not the task's code, ended the try). When
    # it is not charged to the user's retries, the instance's new retry_base
    # and infra_failures are recorded with the outcome.
    infrastructure: bool = False
    retry_base: int | None = None
    infra_failures: int | None = None
    # Asset events a successful try emits (its outlets, with outlet_events' extras).
    asset_events: tuple[OutletEvent, ...] = ()
    first_poke_at: dt.datetime | None = None  # set by a reschedule: the sensor's timeout start

    def recorded(self) -> dict[str, Any]:
        """The instance fields that record this outcome, for any state store."""
        fields: dict[str, Any] = {
            "end_date": self.end_date,
            "next_try_at": self.next_try_at,
            "error": self.error,
            "result_length": self.result_length,
            "rendered_map_index": self.rendered_map_index,
            "rendered_fields": self.rendered_fields,
            "skip_downstream": self.skip_downstream,
        }
        if self.retry_base is not None:
            fields["retry_base"] = self.retry_base
        if self.infra_failures is not None:
            fields["infra_failures"] = self.infra_failures
        if self.first_poke_at is not None:
            fields["first_poke_at"] = self.first_poke_at
        return fields


def infrastructure_failure(
    request: TryRequest, start: dt.datetime, end: dt.datetime, exc: BaseException
) -> TryResult:
    """The outcome of a try that AWS failed: retried later, and while the bound
    allows (core.retries.MAX_INFRASTRUCTURE_RETRIES), not charged to the user's
    retries: retry_base moves up with the try, so the next one counts as this
    one would have. No task callback runs: the task itself did not fail."""
    task_spec = request.spec.task(request.task_id)
    decision = decide_after_infrastructure_failure(
        task_spec,
        dag_id=request.spec.dag_id,
        logical_date=request.run.logical_date,
        try_number=request.try_number,
        failed_at=end,
        retry_base=request.retry_base,
        infra_failures=request.infra_failures,
    )
    error = secret_masker.mask(one_line_error(exc))
    counted = "" if not decision.counted else " (too many in a row: counted as a failure)"
    logger.warning(
        "Infrastructure failure of %s try %d%s: %s",
        request.task_id,
        request.try_number,
        counted,
        error,
    )
    return TryResult(
        state=decision.retry.state,
        start_date=start,
        end_date=end,
        next_try_at=decision.retry.next_try_at,
        retry_delay_seconds=decision.retry.delay_seconds,
        error=f"infrastructure failure: {error}",
        infrastructure=True,
        retry_base=None if decision.counted else request.retry_base + 1,
        infra_failures=None if decision.counted else request.infra_failures + 1,
    )


def one_line_error(exc: BaseException, timeout: float | None = None) -> str:
    """``"ExceptionType: message"`` on one line, short enough for a state record."""
    message = str(exc).strip()
    if not message and isinstance(exc, TaskTimeout) and timeout is not None:
        message = timeout_message(timeout)
    message = " ".join(message.split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 3] + "..."
    return text


def rescheduled(
    request: TryRequest,
    log: logging.LoggerAdapter[logging.Logger],
    start: dt.datetime,
    end: dt.datetime,
    exc: BaseException,
) -> TryResult:
    """A sensor's poke was not satisfied: the try waits UP_FOR_RESCHEDULE, holding
    no worker, until ``reschedule_date``, then pokes again as the same try. The
    first poke's start is kept so the sensor's timeout spans every reschedule.
    No callback runs: the task neither failed nor finished (Airflow)."""
    when = getattr(exc, "reschedule_date", None)
    if not isinstance(when, dt.datetime):
        raise TypeError(f"{type(exc).__name__} needs a reschedule_date, got {when!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    log.info("Rescheduling %s: poking again at %s", request.task_id, when.isoformat())
    return TryResult(
        state=TaskState.UP_FOR_RESCHEDULE,
        start_date=start,
        end_date=end,
        next_try_at=max(when, end),
        retry_delay_seconds=round(max(0.0, (when - end).total_seconds()), 3),
        first_poke_at=request.first_poke_at or start,
    )
