"""TaskFlow: ``@task``, ``@task.branch``, ``@task.short_circuit``, ``@task.bash``,
``@task.sensor``.

Calling a decorated function inside a DAG creates a task and returns an
XComArg for its result; passing XComArgs as arguments adds the edges. The
operator classes live in ``operators.python`` and are imported when a task is
first built, so importing the SDK never imports the operator library.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.sdk import contexts
from chalicelib.sdk.mapped import EXPAND_KWARGS_SOURCE, MappedOperator, OperatorPartial
from chalicelib.sdk.setup_teardown import apply_role
from chalicelib.sdk.xcom_arg import XComArg

if TYPE_CHECKING:
    from chalicelib.sdk.baseoperator import BaseOperator

# Names the runtime puts in a task's context. A @task parameter with one of these
# names is filled from the context, so callers need not pass it (Airflow).
CONTEXT_KEYS = frozenset(
    {
        "conf",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "expanded_ti_count",
        "inlets",
        "logical_date",
        "macros",
        "map_index",
        "map_index_template",
        "next_ds",
        "next_ds_nodash",
        "outlet_events",
        "outlets",
        "params",
        "prev_ds",
        "prev_ds_nodash",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
        "run_id",
        "task",
        "task_instance",
        "task_instance_key_str",
        "templates_dict",
        "test_mode",
        "ti",
        "triggering_asset_events",
        "try_number",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
        "conn",
    }
)

_KINDS = ("python", "branch", "short_circuit", "bash", "sensor")


def _operator_class(kind: str) -> type[BaseOperator]:
    if kind == "bash":
        from operators.bash import DecoratedBashOperator

        return DecoratedBashOperator
    if kind == "sensor":
        from operators.sensors.python import DecoratedSensorOperator

        return DecoratedSensorOperator
    from operators.python import (
        DecoratedBranchPythonOperator,
        DecoratedPythonOperator,
        DecoratedShortCircuitOperator,
    )

    classes: dict[str, type[BaseOperator]] = {
        "python": DecoratedPythonOperator,
        "branch": DecoratedBranchPythonOperator,
        "short_circuit": DecoratedShortCircuitOperator,
    }
    return classes[kind]


def infer_multiple_outputs(function: Callable[..., Any]) -> bool:
    """A return annotation of dict/Dict/Mapping means "split the result into keys"."""
    annotations = getattr(function, "__annotations__", {})
    if "return" not in annotations:
        return False
    try:
        return_type = typing.get_type_hints(function).get("return", Any)
    except Exception:  # an unresolvable string annotation
        text = str(annotations["return"]).replace("typing.", "")
        return text.startswith(("dict", "Dict", "Mapping", "MutableMapping"))
    origin = typing.get_origin(return_type) or return_type
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _binding_signature(function: Callable[..., Any]) -> inspect.Signature:
    """The function's signature with context-named parameters made optional."""
    signature = inspect.signature(function)
    parameters = []
    for param in signature.parameters.values():
        if param.name in CONTEXT_KEYS and param.default is param.empty:
            if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL, param.VAR_KEYWORD):
                parameters.append(param)
                continue
            param = param.replace(default=None)
        parameters.append(param)
    # Once a parameter has a default every later positional one needs one too.
    fixed = []
    seen_default = False
    for param in parameters:
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            if param.default is not param.empty:
                seen_default = True
            elif seen_default:
                param = param.replace(kind=param.KEYWORD_ONLY)
        fixed.append(param)
    try:
        return signature.replace(parameters=fixed)
    except ValueError:
        return signature


class _TaskDecorator:
    """A ``@task`` function: call it (or ``.expand`` it) inside a DAG to add a task."""

    def __init__(self, function: Callable[..., Any], kind: str, kwargs: dict[str, Any]):
        if not callable(function):
            raise TypeError(f"@task decorates a function, got {function!r}")
        self.function = function
        self.kind = kind
        self.kwargs = kwargs
        self.role: dict[str, bool] = {}  # set by @setup / @teardown (sdk.setup_teardown)
        functools.update_wrapper(self, function)

    def with_role(self, **role: bool) -> _TaskDecorator:
        """The same function whose tasks are setups or teardowns."""
        other = _TaskDecorator(self.function, self.kind, self.kwargs)
        other.role = {**self.role, **role}
        return other

    # -- building --------------------------------------------------------
    def _operator_kwargs(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        kwargs = {**self.kwargs, **(overrides or {})}
        if kwargs.get("multiple_outputs") is None:
            kwargs["multiple_outputs"] = infer_multiple_outputs(self.function)
        dag = kwargs.get("dag") or contexts.current_dag()
        group = kwargs.get("task_group") or contexts.current_group(dag)
        label = kwargs.get("task_id") or self.function.__name__
        kwargs["task_id"] = dag.unique_label(label, group) if dag is not None else label
        kwargs["python_callable"] = self.function
        return kwargs

    def _check_call(
        self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, partial: bool
    ) -> None:
        signature = _binding_signature(self.function)
        try:
            if partial:
                signature.bind_partial(*args, **kwargs)
            else:
                signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"@task {task_id!r} ({self.function.__qualname__}): {exc}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        operator_kwargs = self._operator_kwargs()
        self._check_call(operator_kwargs["task_id"], args, kwargs, partial=False)
        operator_class = _operator_class(self.kind)
        operator = operator_class(op_args=list(args), op_kwargs=kwargs, **operator_kwargs)
        apply_role(operator, self.role)
        return XComArg(operator)

    def override(self, **kwargs: Any) -> _TaskDecorator:
        """The same function with other task arguments (``f.override(task_id="g")(...)``)."""
        other = _TaskDecorator(self.function, self.kind, {**self.kwargs, **kwargs})
        other.role = dict(self.role)
        return other

    def partial(self, **kwargs: Any) -> _TaskPartial:
        return _TaskPartial(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        return self.partial().expand(**mapped)

    def expand_kwargs(self, source: Any) -> XComArg:
        return self.partial().expand_kwargs(source)

    def __repr__(self) -> str:
        return f"<@task.{self.kind} {self.function.__qualname__}>"


class _TaskPartial:
    """``f.partial(x=1)``: function arguments shared by every mapped instance."""

    def __init__(self, decorator: _TaskDecorator, op_kwargs: dict[str, Any]):
        self.decorator = decorator
        self.op_kwargs = op_kwargs

    def _partial(self) -> OperatorPartial:
        operator_kwargs = self.decorator._operator_kwargs()
        operator_kwargs["op_args"] = []
        operator_kwargs["op_kwargs"] = dict(self.op_kwargs)
        return OperatorPartial(_operator_class(self.decorator.kind), operator_kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        if not mapped:
            raise TypeError(f"{self.decorator!r}.expand() needs at least one argument to map over")
        overlap = sorted(set(mapped) & set(self.op_kwargs))
        if overlap:
            raise TypeError(
                f"{self.decorator!r}: {', '.join(overlap)} given to both partial() and expand()"
            )
        partial = self._partial()
        self.decorator._check_call(
            partial.kwargs["task_id"], (), {**self.op_kwargs, **mapped}, partial=True
        )
        operator = MappedOperator(
            partial.operator_class, partial.kwargs, dict(mapped), "expand", sys._getframe(1)
        )
        apply_role(operator, self.decorator.role)
        return XComArg(operator)

    def expand_kwargs(self, source: Any) -> XComArg:
        partial = self._partial()
        operator = MappedOperator(
            partial.operator_class,
            partial.kwargs,
            {EXPAND_KWARGS_SOURCE: source},
            "expand_kwargs",
            sys._getframe(1),
        )
        apply_role(operator, self.decorator.role)
        return XComArg(operator)


def _decorator(kind: str) -> Callable[..., Any]:
    def make(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return _TaskDecorator(python_callable, kind, kwargs)

        def decorate(function: Callable[..., Any]) -> _TaskDecorator:
            return _TaskDecorator(function, kind, kwargs)

        return decorate

    make.__name__ = kind
    return make


class TaskDecoratorCollection:
    """``@task``, ``@task(...)``, ``@task.python``, ``@task.branch``, ``@task.short_circuit``,
    ``@task.bash`` (the function returns the command to run), ``@task.sensor`` (the
    function is the poke: a bool or a PokeReturnValue)."""

    python = staticmethod(_decorator("python"))
    branch = staticmethod(_decorator("branch"))
    short_circuit = staticmethod(_decorator("short_circuit"))
    bash = staticmethod(_decorator("bash"))
    sensor = staticmethod(_decorator("sensor"))

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self.python(python_callable, **kwargs)


task = TaskDecoratorCollection()
