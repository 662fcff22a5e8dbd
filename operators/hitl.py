"""Human-in-the-loop operators (Airflow 3.1's providers.standard.operators.hitl):
a task that asks a person and waits for the answer holding no worker.

The first poke records the request (the hitl table, through
``runtime.hitl``) and ends the invocation as a reschedule: the instance waits
``up_for_reschedule`` (Airflow shows ``deferred``) on a timer due at its
deadline, ``execution_timeout`` after the first poke. A response through the
REST API wakes it at once (store/hitl.py: the answer and ``next_try`` = now in
one transaction, then a timer message), so nothing polls. At the deadline with
no answer the ``defaults`` are the answer, else the task fails
(HITLTimeoutError), as Airflow's HITLTrigger does. The answer is the task's
XCom ``return_value``: ``chosen_options``, ``params_input``, ``responded_at``,
``responded_by_user``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from chalicelib.core.hitl import (
    HitlKey,
    HitlRequest,
    HitlResponse,
    check_request,
    default_params,
)
from chalicelib.runtime.hitl import hitl_port
from chalicelib.sdk import clock
from chalicelib.sdk.baseoperator import BaseOperator
from chalicelib.sdk.exceptions import TaskFailed, TaskRescheduled
from operators.python import BranchMixIn

log = logging.getLogger("slipstream.task")

WAIT_WITHOUT_TIMEOUT = dt.timedelta(days=7)
"""With no execution_timeout the wait has no deadline; the timer still needs a
date, so an unanswered request is looked at again (one short poke) weekly."""


class HITLTimeoutError(TaskFailed):
    """No answer before the deadline and no defaults (Airflow's HITLTimeoutError)."""

    def __init__(self, message: str):
        super().__init__(message, non_retryable=False)


class HITLRejectException(TaskFailed):
    """``ApprovalOperator(fail_on_reject=True)`` was rejected (Airflow's exception)."""

    def __init__(self, message: str):
        super().__init__(message, non_retryable=False)


def _serialized(param: Any) -> Any:
    """Airflow's serialized Param: value, description and schema."""
    if hasattr(param, "schema") and hasattr(param, "resolve"):
        return {"value": param.resolve(), "description": param.description, "schema": param.schema}
    return param


class HITLOperator(BaseOperator):
    """Ask ``subject`` (and ``body``, Markdown) with ``options`` to choose from
    (several when ``multiple``), and ``params`` to fill in; ``defaults`` are
    taken when ``execution_timeout`` passes unanswered."""

    template_fields: Sequence[str] = ("subject", "body")

    def __init__(
        self,
        *,
        subject: str,
        options: list[str],
        body: str | None = None,
        defaults: str | list[str] | None = None,
        multiple: bool = False,
        params: Mapping[str, Any] | None = None,
        notifiers: Sequence[Callable[..., Any]] | Callable[..., Any] | None = None,
        assigned_users: Mapping[str, str] | list[Mapping[str, str]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(params=params, **kwargs)
        where = f"{type(self).__name__} (task_id: {self.task_id!r})"
        if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
            raise TypeError(f"{where}: options must be a list of strings, got {options!r}")
        self.subject = subject
        self.body = body
        self.options = list(options)
        self.defaults = [defaults] if isinstance(defaults, str) else defaults
        self.multiple = bool(multiple)
        self.notifiers = [notifiers] if callable(notifiers) else list(notifiers or [])
        users = [assigned_users] if isinstance(assigned_users, Mapping) else assigned_users
        self.assigned_users = [dict(u) for u in users or []]
        try:
            check_request(self.options, self.defaults, self.multiple, self.params or {})
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    @property
    def serialized_params(self) -> dict[str, Any]:
        return {name: _serialized(p) for name, p in (self.params or {}).items()}

    def _request(self, try_number: int, created: dt.datetime) -> HitlRequest:
        return HitlRequest(
            subject=str(self.subject),
            options=tuple(self.options),
            body=None if self.body is None else str(self.body),
            defaults=None if self.defaults is None else tuple(self.defaults),
            multiple=self.multiple,
            params=self.serialized_params,
            assigned_users=tuple(self.assigned_users),
            try_number=try_number,
            created_at=created,
        )

    def execute(self, context: Mapping[str, Any]) -> Any:
        ti = context["ti"]
        port = hitl_port()
        key = HitlKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        now = clock.now()
        first = ti.get_first_reschedule_date(context)
        request = self._request(ti.try_number, first or now)
        if first is None:
            port.open(key, request, now)
            for notifier in self.notifiers:
                notifier(context)
        answer = port.response(key, ti.try_number)
        if answer is None:
            timeout = self.execution_timeout
            deadline = None if timeout is None else (first or now) + timeout
            if port.can_wait and (deadline is None or now < deadline):
                log.info(
                    "Waiting for response%s", f" until {deadline.isoformat()}" if deadline else ""
                )
                raise TaskRescheduled(deadline or now + WAIT_WITHOUT_TIMEOUT)
            answer = self._timed_out(port, key, ti.try_number, request, now, waited=port.can_wait)
        return self.execute_complete(context, answer)

    def _timed_out(
        self,
        port: Any,
        key: HitlKey,
        try_number: int,
        request: HitlRequest,
        now: dt.datetime,
        *,
        waited: bool,
    ) -> HitlResponse:
        if request.defaults is None:
            if not waited:
                raise HITLTimeoutError(
                    f"no response for {key.task_id!r}: dags test asks nobody; give one with "
                    f"--hitl-responses FILE or set defaults= on the task"
                )
            raise HITLTimeoutError(
                "The timeout has passed, and the response has not yet been received."
            )
        fallback = HitlResponse(
            chosen_options=request.defaults,
            params_input=default_params(request),
            responded_at=now,
            responded_by=None,
        )
        answer: HitlResponse = port.close(key, try_number, fallback)
        if answer.timed_out:
            log.info(
                "No response before the timeout: taking the defaults %s", list(request.defaults)
            )
        return answer

    def execute_complete(self, context: Mapping[str, Any], answer: HitlResponse) -> Any:
        """Check the answer against this task (a DAG redeployed since the request
        may offer other options) and return it as Airflow's payload."""
        unknown = set(answer.chosen_options) - set(self.options)
        if unknown:
            raise TaskFailed(f"Responses {sorted(unknown)} not in {self.options}")
        by = answer.responded_by
        who = "the timeout's defaults" if by is None else by.get("name") or by.get("id")
        log.info("Response: %s (%s)", list(answer.chosen_options), who)
        return answer.payload()


class ApprovalOperator(HITLOperator):
    """Approve or Reject. Reject skips the direct downstream tasks (every task
    below with ``ignore_downstream_trigger_rules``), or fails the task with
    ``fail_on_reject``; the task itself succeeds either way otherwise."""

    flow: ClassVar[str] = "short_circuit"
    APPROVE = "Approve"
    REJECT = "Reject"
    FIXED_ARGS = ("options", "multiple")

    def __init__(
        self,
        *,
        ignore_downstream_trigger_rules: bool = False,
        fail_on_reject: bool = False,
        **kwargs: Any,
    ):
        for arg in self.FIXED_ARGS:
            if arg in kwargs:
                raise ValueError(
                    f"ApprovalOperator (task_id: {kwargs.get('task_id')!r}): passing {arg} "
                    "to ApprovalOperator is not allowed"
                )
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules
        self.fail_on_reject = fail_on_reject
        super().__init__(options=[self.APPROVE, self.REJECT], multiple=False, **kwargs)

    def execute_complete(self, context: Mapping[str, Any], answer: HitlResponse) -> Any:
        result = super().execute_complete(context, answer)
        if result["chosen_options"][0] == self.APPROVE:
            log.info("Approved. Proceeding with downstream tasks...")
            return result
        if self.fail_on_reject:
            raise HITLRejectException('Receive "Reject"')
        if self.ignore_downstream_trigger_rules:
            below = self.get_flat_relative_ids(upstream=False)
        else:
            below = self.downstream_task_ids
        dag = self.get_dag()
        to_skip = sorted(
            t for t in below if dag is None or not getattr(dag.get_task(t), "is_teardown", False)
        )
        log.info("Rejected: skipping %s", ", ".join(to_skip) or "nothing")
        if to_skip:
            context["ti"].skip_downstream(to_skip)
        return result


class HITLBranchOperator(BranchMixIn, HITLOperator):
    """Follow the chosen option(s): each names a direct downstream task (or
    group), through ``options_mapping`` when given; the others are skipped."""

    def __init__(self, *, options_mapping: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.options_mapping = dict(options_mapping or {})
        where = f"HITLBranchOperator (task_id: {self.task_id!r})"
        invalid = sorted(set(self.options_mapping) - set(self.options))
        if invalid:
            raise ValueError(
                f"{where}: `options_mapping` contains keys that are not in `options`: {invalid}"
            )
        wrong = {k: v for k, v in self.options_mapping.items() if not isinstance(v, str)}
        if wrong:
            raise ValueError(f"{where}: `options_mapping` values must be task ids (str): {wrong}")

    def execute_complete(self, context: Mapping[str, Any], answer: HitlResponse) -> Any:
        result = super().execute_complete(context, answer)
        chosen = [self.options_mapping.get(o, o) for o in result["chosen_options"]]
        return self.do_branch(context, chosen)


class HITLEntryOperator(HITLOperator):
    """Ask for ``params`` (a form); the only option is "OK", also the default."""

    OK = "OK"

    def __init__(self, **kwargs: Any):
        if "options" not in kwargs:
            kwargs["options"] = [self.OK]
            kwargs.setdefault("defaults", [self.OK])
        super().__init__(**kwargs)
