"""Python operators: run a callable, branch on its result, or short-circuit on it.

Context injection follows Airflow: the callable receives the context entries
(and ``op_kwargs``) whose names it declares, or all of them when it takes
``**kwargs``; ``op_args`` are passed positionally.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, ClassVar

from chalicelib.core.errors import SlipstreamError
from chalicelib.sdk.baseoperator import BaseOperator

log = logging.getLogger(__name__)


class BranchError(SlipstreamError):
    """A branch callable chose something that is not a direct downstream task or group."""


def determine_kwargs(
    function: Callable[..., Any], args: Collection[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments ``function`` asks for out of ``kwargs`` (context plus op_kwargs).

    A name filled positionally by ``args`` must not also be a context key: it would
    be passed twice (Airflow raises the same ValueError).
    """
    signature = inspect.signature(function)
    for name in itertools.islice(signature.parameters, len(args)):
        if name in kwargs:
            raise ValueError(f"the key {name!r} in args is a part of kwargs and therefore reserved")
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return dict(kwargs)
    return {name: kwargs[name] for name in signature.parameters if name in kwargs}


class PythonOperator(BaseOperator):
    """``PythonOperator(task_id=..., python_callable=f, op_args=[...], op_kwargs={...})``."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: list[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise TypeError(
                f"{type(self).__name__} (task_id: {self.task_id!r}): python_callable must be "
                f"callable, got {python_callable!r}"
            )
        self.python_callable = python_callable
        self.op_args = op_args if op_args is not None else []
        self.op_kwargs = dict(op_kwargs) if op_kwargs is not None else {}
        self.templates_dict = templates_dict
        self.templates_exts = templates_exts
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: Mapping[str, Any]) -> Any:
        merged = {**context, **self.op_kwargs}
        if self.templates_dict is not None:
            merged["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, merged)
        result = self.execute_callable(kwargs)
        if self.show_return_value_in_logs:
            log.info("Done. Returned value was: %s", result)
        return result

    def execute_callable(self, kwargs: Mapping[str, Any]) -> Any:
        return self.python_callable(*self.op_args, **kwargs)


class BranchMixIn:
    """Skips the direct downstream tasks a branch callable did not choose."""

    flow: ClassVar[str] = "branch"

    def do_branch(self, context: Mapping[str, Any], branches: Any) -> list[str]:
        """Follow ``branches`` (task ids, group ids, or a list of them; None follows none).

        A group id stands for the group's root tasks. Tasks downstream of a followed
        task are not skipped even when also directly downstream of the branch
        (Airflow's rule for "empty" branches that go straight to a join).
        """
        operator: Any = self
        dag = operator.get_dag()
        if dag is None:
            raise BranchError(f"branch task {operator.task_id!r} is not in a DAG")
        chosen = _branch_ids(operator.task_id, branches)
        followed: set[str] = set()
        for branch_id in chosen:
            group = dag.task_group_dict.get(branch_id)
            if group is not None:
                followed.update(t.task_id for t in group.roots)
            else:
                followed.add(branch_id)
        direct = operator.downstream_task_ids
        invalid = sorted(followed - direct)
        if invalid:
            raise BranchError(
                f"branch task {operator.task_id!r} chose {', '.join(map(repr, invalid))}, which "
                f"is not directly downstream of it; choose from: {', '.join(sorted(direct))}"
            )
        keep = set(followed)
        for task_id in followed:
            keep |= dag.get_task(task_id).get_flat_relative_ids(upstream=False)
        skipped = sorted(direct - keep)
        if skipped:
            context["ti"].skip_downstream(skipped)
        return sorted(followed)


def _branch_ids(task_id: str, branches: Any) -> list[str]:
    if branches is None:
        return []
    if isinstance(branches, str):
        return [branches]
    if isinstance(branches, Iterable):
        items = list(branches)
        if all(isinstance(item, str) for item in items):
            return items
    raise BranchError(
        f"branch task {task_id!r} must return a task id, a task group id, a list of them or "
        f"None; got {branches!r}"
    )


class BranchPythonOperator(BranchMixIn, PythonOperator):
    """The callable returns the task id(s) to follow; other direct downstream tasks skip."""

    def execute(self, context: Mapping[str, Any]) -> Any:
        return self.do_branch(context, PythonOperator.execute(self, context))


class ShortCircuitOperator(PythonOperator):
    """A falsy result skips downstream work.

    With ``ignore_downstream_trigger_rules=True`` (default) every task below is
    skipped whatever its trigger rule; with False only the direct downstream
    tasks are skipped and the rules of the tasks below them decide.
    """

    flow: ClassVar[str] = "short_circuit"

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: Mapping[str, Any]) -> Any:
        condition = super().execute(context)
        if condition:
            log.info("Condition result is %r: proceeding with downstream tasks", condition)
            return condition
        if self.ignore_downstream_trigger_rules:
            to_skip = sorted(self.get_flat_relative_ids(upstream=False))
        else:
            to_skip = sorted(self.downstream_task_ids)
        log.info("Condition result is %r: skipping %s", condition, ", ".join(to_skip) or "nothing")
        if to_skip:
            context["ti"].skip_downstream(to_skip)
        return condition


class DecoratedPythonOperator(PythonOperator):
    """What ``@task`` builds: the call's arguments are ``op_args``/``op_kwargs``."""

    custom_operator_name = "@task"
    mapped_kwargs_field = "op_kwargs"


class DecoratedBranchPythonOperator(BranchPythonOperator):
    """What ``@task.branch`` builds."""

    custom_operator_name = "@task.branch"
    mapped_kwargs_field = "op_kwargs"


class DecoratedShortCircuitOperator(ShortCircuitOperator):
    """What ``@task.short_circuit`` builds."""

    custom_operator_name = "@task.short_circuit"
    mapped_kwargs_field = "op_kwargs"
