"""Running one try of one task instance, from operator to outcome.

``execute_try`` is what every executor ends up calling (a thread locally, a
Lambda or a container in AWS). It owns the Airflow task life cycle: choose
the operator (unmapping a mapped one), resolve upstream results, render
templates, run ``execute`` under ``execution_timeout``, push results, decide
success / skip / retry / failure, and call the task's callbacks. It never
writes task state itself: it returns a ``TryResult`` for the caller's store.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback as tb_module
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from chalicelib.aws.errors import is_infrastructure_error
from chalicelib.core.map_sources import leaf_sources
from chalicelib.core.retries import decide_after_failure
from chalicelib.core.spec import DagSpec, TaskSpec
from chalicelib.core.states import TaskState
from chalicelib.runtime.context import build_context, effective_logical_date, resolve_params
from chalicelib.runtime.mapped_groups import group_arguments, relevant_index_lookup
from chalicelib.runtime.mapping import arguments_for_index
from chalicelib.runtime.outcome import (
    TryRequest,
    TryResult,
    infrastructure_failure,
    one_line_error,
    rescheduled,
)
from chalicelib.runtime.outlets import OutletEvent, OutletEventAccessors
from chalicelib.runtime.rendered_fields import rendered_fields_json
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.templating import render_template_fields, template_env
from chalicelib.runtime.timeout import execution_timeout
from chalicelib.runtime.xcom import RETURN_VALUE_KEY, XComStore, encode_for_xcom
from chalicelib.runtime.xcom_args import resolve_nested
from chalicelib.sdk.clock import task_clock
from chalicelib.sdk.context import current_context
from chalicelib.sdk.exceptions import TaskFailed, TaskRescheduled, TaskSkipped
from chalicelib.secrets import secret_masker
from chalicelib.secrets.lookup import tenant_scope

logger = logging.getLogger("slipstream.task")
# Everything a try logs goes through this logger: one filter masks the
# connection passwords and sensitive variables the try has read.
if not any(isinstance(f, secret_masker.MaskingFilter) for f in logger.filters):
    logger.addFilter(secret_masker.MaskingFilter())

# Python-callable arguments that may hold XComArgs even when an operator does
# not list them among its template fields.
_CALLABLE_ARGUMENTS = ("op_args", "op_kwargs", "templates_dict")
__all__ = [
    "TryRequest",
    "TryResult",
    "UnmappableXComTypePushed",
    "XComForMappingNotPushed",
    "execute_try",
    "infrastructure_failure",
    "one_line_error",
]


class XComForMappingNotPushed(TypeError):
    """A mapped downstream needs this task's result, but it returned None."""

    def __str__(self) -> str:
        return "did not push XCom for task mapping"


class UnmappableXComTypePushed(TypeError):
    """A mapped downstream needs a list or dict, and this task returned something else."""

    def __str__(self) -> str:
        return f"unmappable return type {type(self.args[0]).__qualname__!r}"


def execute_try(
    request: TryRequest, xcoms: XComStore, *, clock: Callable[[], dt.datetime]
) -> TryResult:
    """Run the try and report its outcome; task errors never escape, they are the outcome."""
    with tenant_scope(request.tenant):
        return _execute_try(request, xcoms, clock=clock)


def _execute_try(
    request: TryRequest, xcoms: XComStore, *, clock: Callable[[], dt.datetime]
) -> TryResult:
    start = clock()
    spec = request.spec
    task_spec = spec.task(request.task_id)
    log = logging.LoggerAdapter(
        logger,
        {
            "dag_id": spec.dag_id,
            "run_id": request.run.run_id,
            "task_id": request.task_id,
            "map_index": request.map_index,
            "try_number": request.try_number,
        },
    )
    ti = RuntimeTaskInstance(
        dag_id=spec.dag_id,
        task_id=request.task_id,
        run_id=request.run.run_id,
        map_index=request.map_index,
        try_number=request.try_number,
        max_tries=task_spec.retries,
        task=None,
        xcoms=xcoms,
        is_mapped=_mapped_lookup(spec),
        relevant_map_index=relevant_index_lookup(spec, request.task_id, request.map_index),
        logical_date=effective_logical_date(request.run),
        start_date=start,
        log=log,
        first_reschedule_date=request.first_poke_at,
    )
    context: dict[str, Any] = {}
    result_length: int | None = None
    # Outside "execute", an AWS error is the environment's, not the task's: it
    # happened reading upstream results, expanding a map or rendering templates
    # (after botocore's own retries), and must not cost the user's retries.
    phase = "prepare"
    try:
        clear = getattr(xcoms, "clear", None)
        if callable(clear) and request.try_number > 1:  # a first try has nothing to clear
            clear(request.task_id, request.map_index)
        task = request.dag.get_task(request.task_id)
        ti.task = task
        params = resolve_params(request.dag, task, request.run.conf)
        context = build_context(
            request.dag,
            task,
            request.run,
            ti,
            params,
            triggering_asset_events=request.triggering_asset_events,
        )
        operator = _instance_operator(request, task, context, xcoms)
        ti.rendered_fields = rendered_fields_json(operator)
        ti.task = operator
        context["task"] = operator
        log.info("Running %s", ti)
        timeout = _timeout_seconds(operator, task_spec)
        # Airflow 3 calls on_execute_callback just before execute; like the other
        # callbacks, its errors are logged and never change the try's outcome.
        _call_callbacks(operator, "on_execute_callback", context, None, log)
        phase = "execute"
        stop = execution_timeout(timeout, on_timeout=operator.on_kill, cancel=request.cancel)
        with current_context(context), task_clock(clock), stop:
            result = operator.execute(context)
        phase = "push"
        result_length = _push_result(request, task_spec, operator, result, xcoms)
    except TaskSkipped as exc:
        return _finish(request, ti, context, log, start, clock, TaskState.SKIPPED, exc=exc)
    except TaskRescheduled as exc:
        return replace(
            rescheduled(request, log, start, clock(), exc), rendered_fields=ti.rendered_fields
        )
    except Exception as exc:
        if phase == "execute" or not is_infrastructure_error(exc):
            return _task_failure(request, ti, context, log, start, clock, exc)
        return infrastructure_failure(request, start, clock(), exc)
    except SystemExit as exc:
        return _task_failure(request, ti, context, log, start, clock, exc)
    return _finish(
        request, ti, context, log, start, clock, TaskState.SUCCESS, result_length=result_length
    )


def _asset_events(request: TryRequest, context: dict[str, Any]) -> tuple[OutletEvent, ...]:
    """The events the task's outlets emit, with what it set in ``outlet_events``."""
    outlets = request.spec.task(request.task_id).outlets
    accessors = context.get("outlet_events")
    if not outlets:
        return ()
    if not isinstance(accessors, OutletEventAccessors):
        accessors = OutletEventAccessors()
    return accessors.events(list(outlets))


def _task_failure(
    request: TryRequest,
    ti: RuntimeTaskInstance,
    context: dict[str, Any],
    log: logging.LoggerAdapter[logging.Logger],
    start: dt.datetime,
    clock: Callable[[], dt.datetime],
    exc: BaseException,
) -> TryResult:
    """The task failed (its code, its inputs, its timeout): charged to its retries."""
    task_spec = request.spec.task(request.task_id)
    decision = decide_after_failure(
        task_spec,
        dag_id=request.spec.dag_id,
        logical_date=request.run.logical_date,
        try_number=request.try_number,
        failed_at=clock(),
        non_retryable=isinstance(exc, TaskFailed) and exc.non_retryable,
        retry_base=request.retry_base,
    )
    return _finish(
        request,
        ti,
        context,
        log,
        start,
        clock,
        decision.state,
        exc=exc,
        next_try_at=decision.next_try_at,
        delay=decision.delay_seconds,
        timeout=task_spec.execution_timeout,
    )


def _instance_operator(
    request: TryRequest, task: Any, context: dict[str, Any], xcoms: XComStore
) -> Any:
    """The operator this instance runs: unmapped if need be, upstream values in, rendered."""
    keep_as_is: frozenset[int] = frozenset()
    mapping = request.spec.tasks[request.task_id].mapping
    if mapping is not None and mapping.group is not None:
        keep_as_is = group_arguments(task, request.map_index, context, xcoms).from_upstream
    elif mapping is not None:
        arguments = arguments_for_index(task, request.map_index, context, xcoms)
        task = task.unmap(arguments.kwargs)
        keep_as_is = arguments.from_upstream
        context["expanded_ti_count"] = arguments.total
    rendered = render_template_fields(task, context, keep_as_is=keep_as_is)
    template_fields = set(getattr(task, "template_fields", ()) or ())
    for name in _CALLABLE_ARGUMENTS:
        if name not in template_fields and getattr(rendered, name, None) is not None:
            object.__setattr__(rendered, name, resolve_nested(getattr(rendered, name), context))
    return rendered


def _timeout_seconds(operator: Any, task_spec: TaskSpec) -> float | None:
    value = getattr(operator, "execution_timeout", None)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)):
        return float(value)
    return task_spec.execution_timeout


def _push_result(
    request: TryRequest, task_spec: TaskSpec, operator: Any, result: Any, xcoms: XComStore
) -> int | None:
    """Store the result as Airflow does; return the length a mapped downstream will use."""
    pushing = bool(getattr(operator, "do_xcom_push", True))
    value = result if pushing else None
    mapped_keys = _keys_mapped_downstream(request.spec, task_spec) if request.map_index < 0 else []
    if mapped_keys and value is None:
        raise XComForMappingNotPushed()
    if value is None:
        return None
    multiple_outputs = bool(getattr(operator, "multiple_outputs", False))
    if multiple_outputs:
        _check_multiple_outputs(value)
    for key in mapped_keys:
        mapped_value = value if key == RETURN_VALUE_KEY else _item_or_none(value, key)
        if mapped_value is None:
            raise XComForMappingNotPushed()
        if not _is_mappable(mapped_value):
            raise UnmappableXComTypePushed(mapped_value)
    task_id, index = request.task_id, request.map_index
    encoded = encode_for_xcom(value, task_id=task_id, key=RETURN_VALUE_KEY)
    push_encoded = getattr(xcoms, "push_encoded", None)
    if multiple_outputs:
        for key, item in value.items():
            if push_encoded is not None:
                push_encoded(task_id, index, key, encoded[key])
            else:
                xcoms.push(task_id, index, key, item)
    if push_encoded is not None:
        push_encoded(task_id, index, RETURN_VALUE_KEY, encoded)
    else:
        xcoms.push(task_id, index, RETURN_VALUE_KEY, value)
    # The engine sizes a map from one length per task: the mapped key's when the
    # downstream maps over one key of a multiple_outputs result.
    measured = value
    if len(set(mapped_keys)) == 1 and mapped_keys[0] != RETURN_VALUE_KEY:
        measured = value[mapped_keys[0]]
    return len(measured) if _is_mappable(measured) else None


def _check_multiple_outputs(value: Any) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"Returned output was type {type(value)} expected dictionary for multiple_outputs"
        )
    for key in value:
        if not isinstance(key, str):
            raise TypeError(
                "Returned dictionary keys must be strings when using "
                f"multiple_outputs, found {key} ({type(key)}) instead"
            )


def _is_mappable(value: Any) -> bool:
    """Lists, tuples and dicts; not strings (Airflow's rule)."""
    return isinstance(value, (list, tuple, dict))


def _item_or_none(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _keys_mapped_downstream(spec: DagSpec, task_spec: TaskSpec) -> list[str]:
    """The result keys that direct downstream tasks map over (empty: no mapping)."""
    keys: list[str] = []
    for downstream_id in task_spec.downstream:
        downstream = spec.tasks.get(downstream_id)
        if downstream is None or downstream.mapping is None:
            continue
        for source in leaf_sources(downstream.mapping.sources.values()):
            if source.xcom_task_id == task_spec.task_id:
                keys.append(source.xcom_key)
    return keys


def _mapped_lookup(spec: DagSpec) -> Callable[[str], bool]:
    tasks = spec.tasks

    def is_mapped(task_id: str) -> bool:
        task = tasks.get(task_id)
        return task is not None and task.mapping is not None

    return is_mapped


def _finish(
    request: TryRequest,
    ti: RuntimeTaskInstance,
    context: dict[str, Any],
    log: logging.LoggerAdapter[logging.Logger],
    start: dt.datetime,
    clock: Callable[[], dt.datetime],
    state: TaskState,
    *,
    exc: BaseException | None = None,
    next_try_at: dt.datetime | None = None,
    delay: float | None = None,
    result_length: int | None = None,
    timeout: float | None = None,
) -> TryResult:
    ti.state = state
    error: str | None = None
    trace: str | None = None
    if state is TaskState.SKIPPED:
        log.info("Skipping %s: %s", ti, exc or "skipped")
    elif exc is not None:
        # Masked here too: the error and traceback are stored with the try and
        # shown by the API, where a password in an exception message must not appear.
        error = secret_masker.mask(one_line_error(exc, timeout))
        trace = secret_masker.mask("".join(tb_module.format_exception(exc)))
        if state is TaskState.UP_FOR_RETRY:
            log.error("Try %s failed, retrying at %s: %s", ti.try_number, next_try_at, error)
        else:
            log.error("Task failed: %s", error)
        log.debug("%s", trace)
    else:
        log.info("Marking task as SUCCESS: %s", ti)
    end = clock()
    ti.end_date = end
    rendered_map_index = None
    if context:
        rendered_map_index = _render_map_index(request, context, log)
        _run_callbacks(ti.task, state, context, exc, log)
    return TryResult(
        state=state,
        start_date=start,
        end_date=end,
        next_try_at=next_try_at,
        retry_delay_seconds=delay,
        error=error,
        traceback=trace,
        result_length=result_length,
        rendered_map_index=rendered_map_index,
        rendered_fields=ti.rendered_fields,
        skip_downstream=ti.skipped_downstream,
        asset_events=_asset_events(request, context) if state is TaskState.SUCCESS else (),
    )


def _render_map_index(
    request: TryRequest, context: dict[str, Any], log: logging.LoggerAdapter[logging.Logger]
) -> str | None:
    """The try's ``map_index_template`` rendered with its context, as Airflow 3 does at
    the end of a try (whatever its outcome): the task may have put the values the
    template uses into its context. A template that fails is logged, and the
    instance keeps its number."""
    template = context.get("map_index_template")
    if not isinstance(template, str) or not template:
        return None
    try:
        rendered = template_env(request.dag).render_string(template, context)
    except Exception as exc:
        log.warning("map_index_template %r could not be rendered: %s", template, exc)
        return None
    return None if rendered is None else str(rendered)


_CALLBACK_ATTRIBUTES = {
    TaskState.SUCCESS: "on_success_callback",
    TaskState.FAILED: "on_failure_callback",
    TaskState.UP_FOR_RETRY: "on_retry_callback",
    # Only a try that skipped itself (AirflowSkipException) comes here: tasks the
    # engine skips never run, so their on_skipped_callback never runs (as in Airflow).
    TaskState.SKIPPED: "on_skipped_callback",
}


def _run_callbacks(
    operator: Any,
    state: TaskState,
    context: dict[str, Any],
    exc: BaseException | None,
    log: logging.LoggerAdapter[logging.Logger],
) -> None:
    """Call the task's callbacks for ``state``; their errors are logged, never the outcome."""
    attribute = _CALLBACK_ATTRIBUTES.get(state)
    if attribute is not None:
        _call_callbacks(operator, attribute, context, exc, log)


def _call_callbacks(
    operator: Any,
    attribute: str,
    context: dict[str, Any],
    exc: BaseException | None,
    log: logging.LoggerAdapter[logging.Logger],
) -> None:
    if operator is None:
        return
    callbacks = getattr(operator, attribute, None)
    if not callbacks:
        return
    if callable(callbacks):
        callbacks = [callbacks]
    callback_context = dict(context)
    if exc is not None:
        callback_context["exception"] = exc
    with current_context(callback_context):
        for callback in callbacks:
            try:
                callback(callback_context)
            except Exception:
                log.exception("%s %r failed; the task's outcome stands", attribute, callback)
