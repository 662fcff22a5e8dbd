"""Dynamic task mapping: ``Op.partial(...).expand(...)`` and ``.expand_kwargs(...)``.

A MappedOperator is one task in the DAG whose instances are created at run
time, one per element of its inputs (a cross product for several ``expand``
arguments). It keeps the user's sources as given (literals or XComArgs) in
``expand_input``; the worker resolves them, picks the arguments of one map
index (chalicelib.runtime.mapping) and calls :meth:`unmap`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chalicelib.sdk import contexts
from chalicelib.sdk.baseoperator import (
    BASE_OPERATOR_ARGS,
    PLACEMENT_ARGS,
    accepted_init_args,
    apply_task_attributes,
    building_unmapped,
    merge_default_args,
)
from chalicelib.sdk.dependencies import TaskNode, link
from chalicelib.sdk.source import user_site
from chalicelib.sdk.xcom_arg import XComArg, iter_xcom_args

if TYPE_CHECKING:
    from chalicelib.sdk.baseoperator import BaseOperator

ExpandKind = Literal["expand", "expand_kwargs"]
# expand_kwargs has one source; it sits under this name in expand_input and in the spec.
EXPAND_KWARGS_SOURCE = "kwargs"


def is_mappable_literal(value: Any) -> bool:
    """Lists, tuples and dicts can be mapped over; strings and sets cannot (as in Airflow)."""
    return isinstance(value, (list, tuple, dict))


class OperatorPartial:
    """The arguments shared by every mapped instance; ``expand`` supplies the rest."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]):
        if "task_id" not in kwargs:
            raise TypeError(
                f"{operator_class.__name__}.partial() missing required argument 'task_id'"
            )
        accepted = accepted_init_args(operator_class)
        unknown = sorted(k for k in kwargs if k not in accepted)
        if unknown:
            raise TypeError(
                f"{operator_class.__name__}.partial() got unexpected keyword argument(s) "
                f"{', '.join(unknown)} (task_id: {kwargs['task_id']!r})"
            )
        self.operator_class = operator_class
        self.kwargs = merge_default_args(accepted, kwargs)

    def expand(self, **mapped: Any) -> MappedOperator:
        self._check_expand_names(mapped)
        return self._build(dict(mapped), "expand", sys._getframe(1))

    def expand_kwargs(self, source: Any) -> MappedOperator:
        return self._build({EXPAND_KWARGS_SOURCE: source}, "expand_kwargs", sys._getframe(1))

    def _check_expand_names(self, mapped: Mapping[str, Any]) -> None:
        name = self.operator_class.__name__
        if not mapped:
            raise TypeError(f"{name}.expand() needs at least one argument to map over")
        if self.operator_class.mapped_kwargs_field is not None:
            return  # a @task: names are checked against the function by the decorator
        accepted = accepted_init_args(self.operator_class)
        for key in mapped:
            if key in BASE_OPERATOR_ARGS:
                raise TypeError(
                    f"{name}.expand() cannot map {key!r}: the scheduler needs it before the "
                    f"task runs; pass it to partial()"
                )
            if key not in accepted:
                raise TypeError(f"{name}.expand() got an unexpected keyword argument {key!r}")
            if key in self.kwargs:
                raise TypeError(f"{name}: argument {key!r} given to both partial() and expand()")

    def _build(
        self, expand_input: dict[str, Any], kind: ExpandKind, frame: FrameType
    ) -> MappedOperator:
        return MappedOperator(self.operator_class, self.kwargs, expand_input, kind, frame)


class MappedOperator(TaskNode):
    """A task expanded at run time; it takes part in ``>>`` like any operator."""

    is_mapped: ClassVar[bool] = True

    def __init__(
        self,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: dict[str, Any],
        expand_kind: ExpandKind,
        frame: FrameType | None,
    ):
        self._init_node()
        self.operator_class = operator_class
        self.expand_input = expand_input
        self.expand_kind: ExpandKind = expand_kind
        dag = partial_kwargs.get("dag") or contexts.current_dag()
        group = partial_kwargs.get("task_group") or contexts.current_group(dag)
        self.partial_kwargs = {k: v for k, v in partial_kwargs.items() if k not in PLACEMENT_ARGS}
        apply_task_attributes(self, self.partial_kwargs)
        label = str(partial_kwargs["task_id"])
        self.task_id = group.child_id(label) if group else label
        self._site = user_site(frame, dag.fileloc_raw if dag else None)
        if expand_kind == "expand_kwargs":
            self._check_kwargs_items(expand_input[EXPAND_KWARGS_SOURCE])
        if dag is not None:
            dag.add_task(self, group)
        for arg in iter_xcom_args([self.expand_input, list(self.partial_kwargs.values())]):
            link(arg.operator, self)

    def _check_kwargs_items(self, source: Any) -> None:
        if isinstance(source, (list, tuple)):
            for index, item in enumerate(source):
                if not isinstance(item, (dict, XComArg)):
                    self.record_problem(
                        f"expand_kwargs() item {index} must be a dict of arguments, got "
                        f"{type(item).__name__}"
                    )

    # -- what serialization and the engine read ---------------------------
    @property
    def template_fields(self) -> tuple[str, ...]:
        return tuple(self.operator_class.template_fields)

    @property
    def flow(self) -> str:
        return self.operator_class.flow

    @property
    def python_callable(self) -> Any:
        return self.partial_kwargs.get("python_callable")

    # -- what the worker calls --------------------------------------------
    def unmap(self, kwargs: Mapping[str, Any]) -> BaseOperator:
        """The concrete operator of one map index: partial arguments plus ``kwargs``.

        It has this task's id, DAG, group and edges, and is not added to the DAG.
        """
        init_kwargs = dict(self.partial_kwargs)
        field = self.operator_class.mapped_kwargs_field
        if field is not None:
            init_kwargs[field] = {**(init_kwargs.get(field) or {}), **kwargs}
        else:
            init_kwargs.update(kwargs)
        init_kwargs["task_id"] = self.task_id
        with building_unmapped():
            operator = self.operator_class(**init_kwargs)
        operator._dag = self._dag
        operator.task_group = self.task_group
        operator._upstream = self._upstream
        operator._downstream = self._downstream
        operator._site = self._site
        return operator

    def __repr__(self) -> str:
        return f"<Mapped({self.operator_class.__name__}): {self.task_id}>"
