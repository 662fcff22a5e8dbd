"""Setup and teardown tasks as Airflow 3 writes them.

``task.as_setup()``, ``task.as_teardown(setups=..., on_failure_fail_dagrun=...)``,
the ``@setup`` / ``@teardown`` decorators, and the context-manager form: inside
``with teardown.as_teardown(setups=setup):`` (or ``with setup >> teardown:``, or
``with setup:``), the tasks created in the block go between the pair: the
block's root tasks below the setups, its leaf tasks above the teardowns.
Nested blocks chain outer setup >> inner setup and inner teardown >> outer
teardown, as Airflow does. What a setup/teardown means at run time is in
``chalicelib.core.setup_teardown``; here only the flags and edges are made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.sdk import contexts
from chalicelib.sdk.dependencies import TaskNode, link

if TYPE_CHECKING:
    from chalicelib.sdk.decorators import _TaskDecorator

NOTSET: Any = object()


def _nodes(value: Any, what: str) -> list[TaskNode]:
    """The tasks behind a task, an XComArg, or a list of them."""
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    nodes: list[TaskNode] = []
    for item in items:
        node = getattr(item, "operator", item)  # an XComArg stands for its task
        if not isinstance(node, TaskNode):
            raise TypeError(f"{what} takes tasks or XComArgs of tasks, got {item!r}")
        nodes.append(node)
    return nodes


def _check_not_both(node: TaskNode, making: str) -> None:
    other = "teardown" if making == "setup" else "setup"
    if getattr(node, f"is_{other}", False):
        raise SlipstreamError(
            f"task {node.task_id!r} is already a {other}; a task cannot be both a setup "
            "and a teardown"
        )


def mark_setup(node: TaskNode) -> None:
    _check_not_both(node, "setup")
    node.is_setup = True


def mark_teardown(
    node: TaskNode, *, setups: Any = NOTSET, on_failure_fail_dagrun: Any = NOTSET
) -> None:
    """Airflow's ``as_teardown``: the trigger rule becomes all_done_setup_success and
    each of ``setups`` becomes a setup upstream of this task."""
    _check_not_both(node, "teardown")
    node.is_teardown = True
    node.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
    if on_failure_fail_dagrun is not NOTSET:
        node.on_failure_fail_dagrun = bool(on_failure_fail_dagrun)
    if setups is NOTSET or setups is None:
        return
    for setup in _nodes(setups, "as_teardown(setups=...)"):
        if setup is node:
            raise SlipstreamError(f"task {node.task_id!r} cannot be its own setup")
        mark_setup(setup)
        link(setup, node)


# ------------------------------------------------------------------ decorators
def setup(python_callable: Callable[..., Any] | _TaskDecorator) -> _TaskDecorator:
    """``@setup`` (over a function, or over ``@task...`` of any kind): its tasks are setups."""
    decorator = _as_task_decorator(python_callable, "@setup")
    if decorator.role.get("is_teardown"):
        raise SlipstreamError(f"{decorator!r} is a teardown; it cannot also be a setup")
    return decorator.with_role(is_setup=True)


def teardown(
    python_callable: Callable[..., Any] | _TaskDecorator | None = None,
    *,
    on_failure_fail_dagrun: bool = False,
) -> Any:
    """``@teardown`` or ``@teardown(on_failure_fail_dagrun=True)``; link its setups with
    ``my_teardown().as_teardown(setups=...)`` or ``setup_task >> teardown_task``."""

    def decorate(function: Callable[..., Any] | _TaskDecorator) -> _TaskDecorator:
        decorator = _as_task_decorator(function, "@teardown")
        if decorator.role.get("is_setup"):
            raise SlipstreamError(f"{decorator!r} is a setup; it cannot also be a teardown")
        return decorator.with_role(
            is_teardown=True, on_failure_fail_dagrun=bool(on_failure_fail_dagrun)
        )

    return decorate(python_callable) if python_callable is not None else decorate


def _as_task_decorator(value: Any, name: str) -> _TaskDecorator:
    from chalicelib.sdk.decorators import _TaskDecorator, task

    if isinstance(value, _TaskDecorator):
        return value
    if not callable(value):
        raise TypeError(f"{name} decorates a function or a @task, got {value!r}")
    decorated: _TaskDecorator = task(value)
    return decorated


def apply_role(node: TaskNode, role: dict[str, bool]) -> None:
    """Make a task built by a ``@setup``/``@teardown`` function what the decorator says."""
    if role.get("is_setup"):
        mark_setup(node)
    if role.get("is_teardown"):
        mark_teardown(node, on_failure_fail_dagrun=role.get("on_failure_fail_dagrun", False))


# ------------------------------------------------------------------ the with-block
class SetupTeardownScope:
    """What ``with setup_or_teardown_task as scope:`` gives: tasks made in the block
    land between the block's setups and teardowns; ``scope.add_task(t)`` adds a task
    made before the block (Airflow's ``SetupTeardownContext.add_task``)."""

    def __init__(self, setups: list[TaskNode], teardowns: list[TaskNode]):
        self.setups = setups
        self.teardowns = teardowns
        self.tasks: list[TaskNode] = []

    def add_task(self, task: Any) -> None:
        for node in _nodes(task, "add_task()"):
            if node not in self.tasks:
                self.tasks.append(node)

    def close(self, outer: SetupTeardownScope | None) -> None:
        work = [t for t in self.tasks if not t.is_setup and not t.is_teardown]
        if work and self.setups:
            roots = [t for t in work if not t._upstream] or work[:1]
            for setup_task in self.setups:
                for root in roots:
                    link(setup_task, root)
        if work and self.teardowns:
            leaves = [t for t in work if not t._downstream] or work[-1:]
            for leaf in leaves:
                for teardown_task in self.teardowns:
                    link(leaf, teardown_task)
        if outer is not None:
            for up in outer.setups:
                for down in self.setups:
                    if up is not down:
                        link(up, down)
            for up in self.teardowns:
                for down in outer.teardowns:
                    if up is not down:
                        link(up, down)


def _nearest(start: TaskNode, direction: str, flag: str) -> list[TaskNode]:
    """The setups above (or teardowns below) ``start``: the nearest layer that has any."""
    seen: set[str] = {start.task_id}
    layer = [start]
    while layer:
        following: list[TaskNode] = []
        for node in layer:
            for other in getattr(node, direction).values():
                if other.task_id not in seen:
                    seen.add(other.task_id)
                    following.append(other)
        found = [n for n in following if getattr(n, flag)]
        if found:
            return found
        layer = following
    return []


def enter_scope(node: TaskNode) -> SetupTeardownScope:
    if node.is_teardown:
        scope = SetupTeardownScope(_nearest(node, "_upstream", "is_setup"), [node])
    elif node.is_setup:
        scope = SetupTeardownScope([node], _nearest(node, "_downstream", "is_teardown"))
    else:
        raise SlipstreamError(
            f"task {node.task_id!r}: only setup and teardown tasks can be used as context "
            "managers (call .as_setup() or .as_teardown(...) first)"
        )
    contexts.push_scope(scope)
    return scope


def exit_scope() -> None:
    scope = contexts.pop_scope()
    scope.close(contexts.current_scope())


def note_task(node: TaskNode) -> None:
    """A task just added to its DAG joins the innermost open setup/teardown block."""
    scope = contexts.current_scope()
    if scope is not None:
        scope.add_task(node)


# ------------------------------------------------------------------ task groups
def group_leaves(tasks: Iterable[TaskNode]) -> list[TaskNode]:
    """A task group's leaves for ``group >> other``, teardowns left out as in Airflow:
    a teardown leaf stands aside and the work task above it is the leaf instead
    (unless that task already leads to other work in the group)."""
    members = list(tasks)
    ids = {t.task_id for t in members}

    def leads_to_work(node: TaskNode, besides: str) -> bool:
        return any(
            d in ids and d != besides and not down.is_teardown
            for d, down in node._downstream.items()
        )

    def above_teardown(node: TaskNode, seen: set[str]) -> list[TaskNode]:
        found: list[TaskNode] = []
        for uid, up in node._upstream.items():
            if uid not in ids or uid in seen:
                continue
            seen.add(uid)
            if up.is_teardown:
                found += above_teardown(up, seen)
            elif node.is_teardown and up.is_setup:
                continue  # never through the setup -> teardown edge
            elif not leads_to_work(up, node.task_id):
                found.append(up)
        return found

    leaves: list[TaskNode] = []
    for node in members:
        if not any(d in ids for d in node._downstream):
            more = [node] if not node.is_teardown else above_teardown(node, set())
            leaves += [m for m in more if m not in leaves]
    return leaves
