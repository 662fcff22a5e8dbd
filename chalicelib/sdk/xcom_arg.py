"""References to values known only at run time: a task's result (XComArg) and friends.

Passing a reference as an argument both declares the dependency (at parse
time) and delivers the value (at run time: the worker calls ``resolve``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.core.values import xcom_ref
from chalicelib.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from chalicelib.sdk.dependencies import TaskNode

RETURN_VALUE = "return_value"


class _NotSet:
    """``zip()`` without ``fillvalue`` (None is a fillvalue like any other)."""

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()


class ResolvableArg:
    """A placeholder argument that the worker replaces with a value from the task context."""

    def resolve(self, context: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class XComArg(ResolvableArg, DependencyMixin):
    """The result of ``operator`` under ``key``: Airflow's XComArg.

    ``task.output`` and calling a ``@task`` function return one;
    ``arg["key"]`` selects one key of a ``multiple_outputs`` result.
    """

    def __init__(self, operator: TaskNode, key: str = RETURN_VALUE):
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self.operator, key)

    def __iter__(self) -> NoReturn:
        # Without this, __getitem__ would make Python iterate forever over "0", "1", ...
        raise TypeError("an XComArg is not iterable: its value exists only at run time")

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, XComArg):
            return NotImplemented
        return self.operator is other.operator and self.key == other.key

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    @property
    def task_id(self) -> str:
        return self.operator.task_id

    def _relation_roots(self) -> list[TaskNode]:
        return [self.operator]

    def _relation_leaves(self) -> list[TaskNode]:
        return [self.operator]

    # Setup/teardown, as on the task (Airflow's PlainXComArg delegates the same way).
    @property
    def is_setup(self) -> bool:
        return self.operator.is_setup

    @is_setup.setter
    def is_setup(self, value: bool) -> None:
        self.operator.is_setup = value

    @property
    def is_teardown(self) -> bool:
        return self.operator.is_teardown

    def as_setup(self) -> XComArg:
        self.operator.as_setup()
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: Any = None) -> XComArg:
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> Any:
        return self.operator.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.operator.__exit__(*exc)

    def iter_references(self) -> Iterator[tuple[TaskNode, str]]:
        yield self.operator, self.key

    def resolve(self, context: Mapping[str, Any]) -> Any:
        ti = context["ti"]
        # Inside a mapped task group, a task of the same group gives its result at
        # this instance's map index (as Airflow's relevant upstream map indexes do).
        relevant = getattr(ti, "relevant_map_index", None)
        index = relevant(self.operator.task_id) if relevant is not None else None
        if index is not None:
            return ti.xcom_pull(task_ids=self.operator.task_id, key=self.key, map_indexes=index)
        return ti.xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def __slipstream_encode__(self) -> dict[str, Any]:
        return xcom_ref(self.operator.task_id, self.key)

    def map(self, f: Callable[[Any], Any]) -> XComArg:
        """Airflow's ``XComArg.map``: ``f`` applied to each element when it is read."""
        from chalicelib.sdk.xcom_arg_ops import map_arg  # builds on this module

        return map_arg(self, f)

    def zip(self, *others: Any, fillvalue: Any = NOTSET) -> XComArg:
        """Airflow's ``XComArg.zip``: tuples of elements; ``fillvalue`` pads to the longest."""
        from chalicelib.sdk.xcom_arg_ops import zip_args

        return zip_args(self, others, fillvalue)


def iter_xcom_args(value: Any) -> Iterator[XComArg]:
    """Every plain XComArg nested anywhere in lists, tuples, sets and dict values of
    ``value`` (a map or zip counts as the references it reads)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, XComArg):
            plain_args = getattr(item, "plain_args", None)  # map/zip: what they read
            yield from (plain_args() if plain_args is not None else (item,))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
