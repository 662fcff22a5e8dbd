"""Task relationships: the node every task is, ``>>``/``<<``, ``chain`` and ``cross_downstream``.

Operators, mapped operators, task groups and XComArgs can all sit on either
side of ``>>``; each says which tasks an edge lands on when it is upstream
(its leaves) and when it is downstream (its roots), as Airflow does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.sdk.source import Site

if TYPE_CHECKING:
    import datetime as dt

    from chalicelib.core.trigger_rules import TriggerRule
    from chalicelib.sdk.dag import DAG
    from chalicelib.sdk.executor import ExecutorConfig
    from chalicelib.sdk.params import Param
    from chalicelib.sdk.taskgroup import TaskGroup
    from chalicelib.sdk.xcom_arg import XComArg


class DependencyMixin:
    """``a >> b`` sets ``b`` downstream of ``a`` and returns ``b`` so chains read left to right."""

    def _relation_roots(self) -> list[TaskNode]:
        """Tasks that receive the edge when this object is downstream."""
        raise NotImplementedError

    def _relation_leaves(self) -> list[TaskNode]:
        """Tasks the edge starts from when this object is upstream."""
        raise NotImplementedError

    def set_upstream(self, other: Any) -> None:
        downs = self._relation_roots()
        for up in _leaves_of(other):
            for down in downs:
                link(up, down)

    def set_downstream(self, other: Any) -> None:
        ups = self._relation_leaves()
        for down in _roots_of(other):
            for up in ups:
                link(up, down)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:
        """``[a, b] >> self``: Python asks the right operand when a list is on the left."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return self


class TaskNode(DependencyMixin):
    """What operators and mapped operators share: identity, placement and edges.

    Edges are keyed by task id and kept in insertion order, so serializing them
    never depends on set or memory order.
    """

    task_id: str
    task_group: TaskGroup | None
    _dag: DAG | None
    # Scheduling attributes, set by baseoperator.apply_task_attributes for operators
    # and mapped operators alike (Airflow's types: timedelta, TriggerRule).
    display_name: str | None
    retries: int
    retry_delay: dt.timedelta
    retry_exponential_backoff: bool
    max_retry_delay: dt.timedelta | None
    execution_timeout: dt.timedelta | None
    trigger_rule: TriggerRule | str
    pool: str
    pool_slots: int
    priority_weight: int
    weight_rule: str
    executor: ExecutorConfig
    params: dict[str, Param]
    doc_md: str | None
    # Setup/teardown roles (sdk.setup_teardown); a teardown's failure fails the
    # run only with on_failure_fail_dagrun.
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False

    @property
    def output(self) -> XComArg:
        """The task's return value, for passing downstream (Airflow's ``.output``)."""
        from chalicelib.sdk.xcom_arg import XComArg  # xcom_arg builds on this module

        return XComArg(self)

    @property
    def label(self) -> str:
        return self.display_name or self.task_id

    multiple_outputs: bool

    def _init_node(self) -> None:
        self._dag = None
        self.task_group = None
        self._upstream: dict[str, TaskNode] = {}
        self._downstream: dict[str, TaskNode] = {}
        self._problems: list[str] = []
        self._site: Site = (None, None)

    # -- placement -------------------------------------------------------
    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG | None) -> None:
        """``task.dag = dag`` (old Airflow style) adds the task to that DAG."""
        if dag is None or dag is self._dag:
            return
        dag.add_task(self)

    def has_dag(self) -> bool:
        return self._dag is not None

    # -- relationships ---------------------------------------------------
    def _relation_roots(self) -> list[TaskNode]:
        return [self]

    def _relation_leaves(self) -> list[TaskNode]:
        return [self]

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self._upstream)

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._downstream)

    @property
    def upstream_list(self) -> list[TaskNode]:
        return list(self._upstream.values())

    @property
    def downstream_list(self) -> list[TaskNode]:
        return list(self._downstream.values())

    def get_flat_relative_ids(self, *, upstream: bool = False) -> set[str]:
        """Every task reachable from this one (descendants, or ancestors with upstream=True)."""
        found: set[str] = set()
        stack: list[TaskNode] = [self]
        while stack:
            node = stack.pop()
            relatives = node._upstream if upstream else node._downstream
            for tid, other in relatives.items():
                if tid not in found:
                    found.add(tid)
                    stack.append(other)
        return found

    # -- setup and teardown ------------------------------------------------
    def as_setup(self) -> TaskNode:
        """Mark this task a setup (Airflow's ``as_setup``); returns the task."""
        from chalicelib.sdk.setup_teardown import mark_setup

        mark_setup(self)
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: Any = None) -> TaskNode:
        """Mark this task a teardown of ``setups`` (each made a setup upstream of it)."""
        from chalicelib.sdk.setup_teardown import NOTSET, mark_teardown

        mark_teardown(
            self,
            setups=NOTSET if setups is None else setups,
            on_failure_fail_dagrun=NOTSET
            if on_failure_fail_dagrun is None
            else on_failure_fail_dagrun,
        )
        return self

    def __enter__(self) -> Any:
        """``with teardown_task:`` / ``with setup_task:``: tasks made inside go between."""
        from chalicelib.sdk.setup_teardown import enter_scope

        return enter_scope(self)

    def __exit__(self, *exc: object) -> None:
        from chalicelib.sdk.setup_teardown import exit_scope

        exit_scope()

    def record_problem(self, message: str) -> None:
        """Keep a construction-time problem so validation reports it with this task's line."""
        self._problems.append(message)


def link(up: TaskNode, down: TaskNode) -> None:
    """Add the edge ``up >> down``; a task without a DAG joins its partner's DAG (Airflow)."""
    if up._dag is None and down._dag is not None:
        down._dag.add_task(up)
    elif down._dag is None and up._dag is not None:
        up._dag.add_task(down)
    up._downstream[down.task_id] = down
    down._upstream[up.task_id] = up


def _flatten(value: Any) -> Iterator[DependencyMixin]:
    if isinstance(value, DependencyMixin):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _flatten(item)
    else:
        raise TypeError(
            "relationships can only be set between operators, task groups, XComArgs "
            f"or lists of them; got {type(value).__name__}: {value!r}"
        )


def _roots_of(value: Any) -> list[TaskNode]:
    return [node for item in _flatten(value) for node in item._relation_roots()]


def _leaves_of(value: Any) -> list[TaskNode]:
    return [node for item in _flatten(value) for node in item._relation_leaves()]


def chain(*tasks: Any) -> None:
    """Airflow's chain: each element downstream of the previous one.

    Two adjacent lists are linked pairwise and must have the same length; a
    list next to a single task fans in or out.
    """
    for up, down in itertools.pairwise(tasks):
        if isinstance(up, DependencyMixin):
            up.set_downstream(down)
            continue
        if isinstance(down, DependencyMixin):
            down.set_upstream(up)
            continue
        if not isinstance(up, Sequence) or not isinstance(down, Sequence):
            raise TypeError(
                f"chain() takes tasks, task groups, XComArgs or lists of them; got {up!r} and "
                f"{down!r}"
            )
        if len(up) != len(down):
            raise ValueError(
                f"chain() links adjacent lists pairwise, so they must have the same length; "
                f"got {len(up)} and {len(down)}"
            )
        for left, right in zip(up, down, strict=True):
            _as_dependency(left).set_downstream(right)


def cross_downstream(from_tasks: Iterable[Any], to_tasks: Any) -> None:
    """Every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    for task in from_tasks:
        _as_dependency(task).set_downstream(to_tasks)


def _as_dependency(value: Any) -> DependencyMixin:
    if not isinstance(value, DependencyMixin):
        raise TypeError(f"expected a task, task group or XComArg, got {value!r}")
    return value
