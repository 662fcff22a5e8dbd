"""Human-in-the-loop (Airflow 3.1's HITL) as plain data: what a waiting task
asks, what a person answers, and the rules an answer must pass.

The operator (operators/hitl.py), the REST API and ``dags test`` all check an
answer here, so a response the API accepts is one the task accepts too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.validation import param_value_problem


class HitlError(SlipstreamError):
    """Base of the human-in-the-loop errors."""


class InvalidResponse(HitlError):
    """A response names options the task does not offer, or params it does not ask for."""


class AlreadyResponded(HitlError):
    """The request has its answer (a person's or the timeout's defaults): a second is refused."""


class NotWaiting(HitlError):
    """No request is open for that task instance (not asked yet, or another try)."""


@dataclass(frozen=True)
class HitlKey:
    """One task instance; the request belongs to one of its tries."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


@dataclass(frozen=True)
class HitlRequest:
    """What the task asks (Airflow's HITLDetail, request half)."""

    subject: str
    options: tuple[str, ...]
    body: str | None = None
    defaults: tuple[str, ...] | None = None
    multiple: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    assigned_users: tuple[Mapping[str, str], ...] = ()
    try_number: int = 1
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class HitlResponse:
    """The answer; ``responded_by`` is None when the timeout applied the defaults."""

    chosen_options: tuple[str, ...]
    params_input: Mapping[str, Any]
    responded_at: dt.datetime
    responded_by: Mapping[str, str] | None = None

    @property
    def timed_out(self) -> bool:
        return self.responded_by is None

    def payload(self) -> dict[str, Any]:
        """What the task returns (XCom ``return_value``), as Airflow's
        HITLTriggerEventSuccessPayload without its internal ``timedout`` flag."""
        return {
            "chosen_options": list(self.chosen_options),
            "params_input": dict(self.params_input),
            "responded_at": self.responded_at.isoformat(),
            "responded_by_user": dict(self.responded_by) if self.responded_by else None,
        }


def check_response(
    request: HitlRequest, chosen_options: Sequence[str], params_input: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The params_input to store (the request's params with the answer's values
    over them); InvalidResponse saying every problem otherwise."""
    problems: list[str] = []
    chosen = list(chosen_options)
    if not chosen:
        problems.append("chosen_options: choose at least one option")
    unknown = [c for c in chosen if c not in request.options]
    if unknown:
        problems.append(
            f"chosen_options: {', '.join(map(repr, unknown))} not in the options "
            f"{', '.join(map(repr, request.options))}"
        )
    if len(chosen) != len(set(chosen)):
        problems.append("chosen_options: an option is chosen twice")
    if not request.multiple and len(chosen) > 1:
        problems.append("chosen_options: this task takes one option (multiple is false)")
    given = dict(params_input or {})
    extra = sorted(set(given) - set(request.params))
    if extra:
        problems.append(f"params_input: {', '.join(map(repr, extra))} not among the task's params")
    for name, value in given.items():
        param = request.params.get(name)
        schema = param.get("schema") if isinstance(param, Mapping) else None
        problem = param_value_problem(name, value, schema) if isinstance(schema, Mapping) else None
        if problem:
            problems.append(f"params_input: {problem}")
    if problems:
        raise InvalidResponse("; ".join(problems))
    merged = {k: _param_value(v) for k, v in request.params.items()}
    merged.update(given)
    return merged


def _param_value(param: Any) -> Any:
    """A serialized Param is ``{"value": ..., "schema": ..., "description": ...}``."""
    if isinstance(param, Mapping) and "value" in param and "schema" in param:
        return param["value"]
    return param


def default_params(request: HitlRequest) -> dict[str, Any]:
    return {k: _param_value(v) for k, v in request.params.items()}


def check_request(
    options: Sequence[str],
    defaults: Sequence[str] | None,
    multiple: bool,
    params: Mapping[str, Any],
) -> None:
    """Airflow's HITLOperator checks, raised as ValueError at DAG-build time."""
    if not options:
        raise ValueError('"options" cannot be empty')
    if len(set(options)) != len(options):
        raise ValueError(f'"options" has duplicates: {list(options)}')
    if "_options" in params:
        raise ValueError('"_options" is not allowed in params')
    if defaults is not None:
        if not set(defaults) <= set(options):
            raise ValueError(
                f'defaults "{list(defaults)}" should be a subset of options "{list(options)}"'
            )
        if not multiple and len(defaults) > 1:
            raise ValueError('More than one defaults given when "multiple" is set to False.')
