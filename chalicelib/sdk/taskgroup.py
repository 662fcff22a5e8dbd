"""Task groups: nested namespaces of tasks, flattened in the spec (how sub-DAGs are done).

A group prefixes its tasks' ids (``group.task``, ``outer.inner.task``), passes
its ``default_args`` down, and on either side of ``>>`` stands for its root
tasks (when downstream) or its leaf tasks (when upstream), as in Airflow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, overload

from chalicelib.core.errors import SlipstreamError
from chalicelib.sdk import contexts
from chalicelib.sdk.dependencies import DependencyMixin, TaskNode
from chalicelib.sdk.setup_teardown import group_leaves
from chalicelib.sdk.source import Site, caller_site

if TYPE_CHECKING:
    from chalicelib.sdk.dag import DAG

GROUP_ID_RE = re.compile(r"^[\w-]+$")


class TaskGroup(DependencyMixin):
    """``with TaskGroup("extract", default_args={...}) as tg:`` (Airflow's TaskGroup)."""

    def __init__(
        self,
        group_id: str | None,
        *,
        prefix_group_id: bool = True,
        tooltip: str = "",
        default_args: dict[str, Any] | None = None,
        display_name: str | None = None,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        add_suffix_on_collision: bool = False,
    ):
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self.display_name = display_name
        self.children: dict[str, TaskNode | TaskGroup] = {}
        self._site: Site = (None, None)
        if group_id is None:  # the root group a DAG creates for itself
            if dag is None:
                raise SlipstreamError("only a DAG creates a root task group (group_id=None)")
            self.dag: DAG = dag
            self.parent_group: TaskGroup | None = None
            self.group_id: str | None = None
            self.default_args: dict[str, Any] = {}
            return

        resolved_dag = dag or (parent_group.dag if parent_group else None) or contexts.current_dag()
        if resolved_dag is None:
            raise SlipstreamError(
                f"TaskGroup {group_id!r} must be created inside a DAG (with DAG(...) or dag=...)"
            )
        self.dag = resolved_dag
        parent = parent_group or contexts.current_group(resolved_dag) or resolved_dag.task_group
        self.parent_group = parent
        self._site = caller_site(1, preferred_file=resolved_dag.fileloc_raw)
        self.default_args = {**parent.default_args, **(default_args or {})}

        full_id = parent.child_id(group_id)
        if add_suffix_on_collision and resolved_dag.is_id_taken(full_id):
            group_id = resolved_dag.unique_label(group_id, parent)
            full_id = parent.child_id(group_id)
        self.group_id = full_id
        if not GROUP_ID_RE.match(group_id):
            resolved_dag.record_problem(
                f"task group id {group_id!r} may contain only letters, digits, '_' and '-'",
                self._site,
            )
        resolved_dag.add_task_group(self)
        parent.children[full_id] = self

    # -- ids ---------------------------------------------------------------
    @property
    def label(self) -> str | None:
        """The group's own id without its parents' prefix."""
        if self.group_id is None or self.parent_group is None:
            return self.group_id
        prefix = self.parent_group.child_id("")
        return self.group_id[len(prefix) :] if prefix else self.group_id

    def child_id(self, label: str) -> str:
        # As in Airflow, prefix_group_id=False drops the whole prefix, parents' included.
        if self.prefix_group_id and self.group_id:
            return f"{self.group_id}.{label}"
        return label

    # -- membership --------------------------------------------------------
    def add(self, node: TaskNode) -> None:
        self.children[node.task_id] = node

    def iter_tasks(self) -> Iterator[TaskNode]:
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child.iter_tasks()
            else:
                yield child

    def _task_ids(self) -> set[str]:
        return {t.task_id for t in self.iter_tasks()}

    @property
    def roots(self) -> list[TaskNode]:
        """Tasks of the group with no upstream task inside the group."""
        inside = self._task_ids()
        return [t for t in self.iter_tasks() if not any(u in inside for u in t._upstream)]

    @property
    def leaves(self) -> list[TaskNode]:
        """Tasks of the group with no downstream task inside the group."""
        if any(t.is_teardown for t in self.iter_tasks()):
            return group_leaves(self.iter_tasks())  # teardowns stand aside (Airflow)
        inside = self._task_ids()
        return [t for t in self.iter_tasks() if not any(d in inside for d in t._downstream)]

    def get_roots(self) -> list[TaskNode]:
        return self.roots

    def get_leaves(self) -> list[TaskNode]:
        return self.leaves

    def _relation_roots(self) -> list[TaskNode]:
        return self.roots

    def _relation_leaves(self) -> list[TaskNode]:
        return self.leaves

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> TaskGroup:
        contexts.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        contexts.pop_group()

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id!r}>"


class _TaskGroupFactory:
    """What ``@task_group`` returns: calling it builds a fresh group around the function."""

    def __init__(self, function: Callable[..., Any], group_kwargs: dict[str, Any]):
        self.function = function
        self.group_kwargs = group_kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        options = dict(self.group_kwargs)
        group_id = options.pop("group_id", None) or self.function.__name__
        options.setdefault("add_suffix_on_collision", True)
        if "tooltip" not in options and self.function.__doc__:
            options["tooltip"] = self.function.__doc__.strip()
        with TaskGroup(group_id, **options) as group:
            result = self.function(*args, **kwargs)
        # As in Airflow: a returned task (or XComArg) is what dependencies bind to;
        # otherwise the group as a whole.
        return group if result is None else result

    def override(self, **kwargs: Any) -> _TaskGroupFactory:
        return _TaskGroupFactory(self.function, {**self.group_kwargs, **kwargs})

    # -- mapped task groups (sdk.mapped_group) -----------------------------
    def partial(self, **kwargs: Any) -> Any:
        from chalicelib.sdk.mapped_group import TaskGroupPartial

        return TaskGroupPartial(self, kwargs)

    def expand(self, **kwargs: Any) -> Any:
        """Map the whole group: each of its tasks gets one instance per input element."""
        return self.partial().expand(**kwargs)

    def expand_kwargs(self, source: Any) -> Any:
        return self.partial().expand_kwargs(source)


@overload
def task_group(python_callable: Callable[..., Any], /) -> _TaskGroupFactory: ...
@overload
def task_group(
    python_callable: None = None, /, **group_kwargs: Any
) -> Callable[[Callable[..., Any]], _TaskGroupFactory]: ...


def task_group(
    python_callable: Callable[..., Any] | None = None, /, **group_kwargs: Any
) -> _TaskGroupFactory | Callable[[Callable[..., Any]], _TaskGroupFactory]:
    """``@task_group`` or ``@task_group(group_id=..., default_args=...)``."""
    if python_callable is not None:
        return _TaskGroupFactory(python_callable, group_kwargs)

    def decorate(function: Callable[..., Any]) -> _TaskGroupFactory:
        return _TaskGroupFactory(function, group_kwargs)

    return decorate
