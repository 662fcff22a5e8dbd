"""Mapped task groups: ``@task_group`` functions called with ``.expand(...)``.

As in Airflow, the group function runs once at parse time with a
:class:`MappedArgument` for each mapped parameter; every task it creates is
mapped over the group's input, and instance ``i`` of each task sees element
``i``. The engine runs the group index by index (core.group_mapping): task B's
instance ``i`` waits for its upstream's instance ``i`` inside the group only.

Slipstream refuses what it does not run: a mapped group inside another mapped
group, and a task ``.expand()``-ed inside a mapped group (Airflow multiplies
the lengths); both are reported at validation with the file and line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.core.errors import MappingError
from chalicelib.sdk.dependencies import link
from chalicelib.sdk.mapped import EXPAND_KWARGS_SOURCE, is_mappable_literal
from chalicelib.sdk.taskgroup import TaskGroup
from chalicelib.sdk.xcom_arg import ResolvableArg, XComArg, iter_xcom_args

if TYPE_CHECKING:
    from chalicelib.sdk.dependencies import TaskNode

MAPPED_ARGUMENT_TAG = "__mapped_argument__"
GroupKind = Literal["expand", "expand_kwargs"]


class MappedTaskGroup(TaskGroup):
    """A task group whose tasks are all mapped over ``expand_input`` (Airflow's name)."""

    def __init__(
        self,
        group_id: str,
        *,
        expand_input: dict[str, Any],
        expand_kind: GroupKind,
        **options: Any,
    ):
        super().__init__(group_id, **options)
        self.expand_input = expand_input
        self.expand_kind: GroupKind = expand_kind
        if closest_mapped_group(self.parent_group) is not None:
            self.dag.record_problem(
                f"mapped task group {self.group_id!r} is inside mapped task group "
                f"{closest_mapped_group(self.parent_group).group_id!r}: "  # type: ignore[union-attr]
                "Slipstream does not run nested mapped task groups; map the outer group "
                "over the combinations instead",
                self._site,
            )

    @property
    def task_id(self) -> str | None:
        """What runtime.mapping names in its messages (it reads a group like a task)."""
        return self.group_id

    def iter_references(self) -> Iterator[XComArg]:
        return iter_xcom_args(list(self.expand_input.values()))

    def check_members(self) -> None:
        """Refuse what a mapped group's tasks cannot be: mapped again (Airflow would
        multiply the lengths), trigger rule ``always`` (Airflow refuses it too), and,
        not yet per index here, setup/teardown and ``depends_on_past``."""
        for node in self.iter_tasks():
            for refused, why in _REFUSED_MEMBERS:
                if refused(node):
                    self.dag.record_problem(
                        f"task {node.task_id!r} in mapped task group {self.group_id!r} {why}",
                        node._site,
                        task_id=node.task_id,
                    )


_REFUSED_MEMBERS: tuple[tuple[Any, str], ...] = (
    (
        lambda node: str(getattr(node, "trigger_rule", "")) == "always",
        "has trigger rule 'always': a mapped group's tasks wait for the group's input, "
        "so Airflow and Slipstream refuse it",
    ),
    (
        lambda node: getattr(node, "is_setup", False) or getattr(node, "is_teardown", False),
        "is a setup or teardown: Slipstream does not run setup/teardown per index of a "
        "mapped group yet; put them around the group",
    ),
    (
        lambda node: getattr(node, "depends_on_past", False),
        "sets depends_on_past/wait_for_downstream: Slipstream does not check the past of "
        "a mapped group's instances yet; use it on a task outside the group",
    ),
    (
        lambda node: getattr(node, "is_mapped", False),
        "is expanded inside it: Slipstream does not map a task inside a mapped group; "
        "its tasks are already mapped over the group's input",
    ),
)


class MappedArgument(ResolvableArg):
    """One parameter of a mapped group's function: element ``map_index`` at run time."""

    def __init__(self, group: MappedTaskGroup, key: str):
        self.group = group
        self.key = key

    def resolve(self, context: Mapping[str, Any]) -> Any:
        arguments = getattr(context.get("ti"), "group_arguments", None)
        if arguments is None:
            raise MappingError(
                f"argument {self.key!r} of mapped task group {self.group.group_id!r} "
                "is only known inside the group's task instances"
            )
        if self.key not in arguments:
            raise MappingError(
                f"mapped task group {self.group.group_id!r}: this instance's input has "
                f"no argument {self.key!r}"
            )
        return arguments[self.key]

    def __slipstream_encode__(self) -> dict[str, Any]:
        return {MAPPED_ARGUMENT_TAG: {"group": self.group.group_id, "key": self.key}}

    def __repr__(self) -> str:
        return f"MappedArgument({self.group.group_id!r}, {self.key!r})"


def closest_mapped_group(group: TaskGroup | None) -> MappedTaskGroup | None:
    """The innermost mapped group containing ``group`` (itself included)."""
    while group is not None:
        if isinstance(group, MappedTaskGroup):
            return group
        group = group.parent_group
    return None


class TaskGroupPartial:
    """``@task_group`` function's ``.partial(...)``: arguments every instance shares."""

    def __init__(self, factory: Any, partial_kwargs: dict[str, Any]):
        self.factory = factory
        self.partial_kwargs = partial_kwargs
        _check_names(factory.function, "partial", partial_kwargs)

    def expand(self, **mapped: Any) -> Any:
        if not mapped:
            raise TypeError("no arguments to expand against")
        _check_names(self.factory.function, "expand", mapped)
        both = sorted(set(mapped) & set(self.partial_kwargs))
        if both:
            raise TypeError(f"argument(s) {', '.join(both)} given to both partial() and expand()")
        return build(self.factory, self.partial_kwargs, mapped, "expand")

    def expand_kwargs(self, source: Any) -> Any:
        source_input = {EXPAND_KWARGS_SOURCE: source}
        return build(self.factory, self.partial_kwargs, source_input, "expand_kwargs")


def _check_names(function: Callable[..., Any], method: str, kwargs: Mapping[str, Any]) -> None:
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(k for k in kwargs if k not in parameters)
    if unknown:
        raise TypeError(
            f"{function.__name__}.{method}() got unexpected keyword argument(s) "
            f"{', '.join(unknown)}"
        )


def build(
    factory: Any, partial_kwargs: dict[str, Any], expand_input: dict[str, Any], kind: GroupKind
) -> Any:
    """Create the mapped group, run the function inside it, link the input's tasks."""
    function = factory.function
    options = dict(factory.group_kwargs)
    group_id = options.pop("group_id", None) or function.__name__
    options.setdefault("add_suffix_on_collision", True)
    if "tooltip" not in options and function.__doc__:
        options["tooltip"] = function.__doc__.strip()
    group = MappedTaskGroup(group_id, expand_input=expand_input, expand_kind=kind, **options)
    with group:
        _check_input(group, expand_input, kind)
        if kind == "expand":
            names = list(expand_input)
        else:
            names = [
                name
                for name, p in inspect.signature(function).parameters.items()
                if name not in partial_kwargs
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            ]
        arguments = {name: MappedArgument(group, name) for name in names}
        result = function(**partial_kwargs, **arguments)
    group.check_members()
    roots: list[TaskNode] = group.roots
    for arg in group.iter_references():  # the input's tasks come before the group (Airflow)
        for root in roots:
            if arg.operator is not root:
                link(arg.operator, root)
    return group if result is None else result


def _check_input(group: MappedTaskGroup, expand_input: dict[str, Any], kind: GroupKind) -> None:
    """Literal inputs must be lists, tuples or dicts (a string is not mapped over)."""
    for name, value in expand_input.items():
        if isinstance(value, XComArg):
            continue
        if kind == "expand_kwargs":
            ok = isinstance(value, (list, tuple)) and all(
                isinstance(item, (dict, XComArg)) for item in value
            )
            what = "a list of dicts"
        else:
            ok = is_mappable_literal(value)
            what = "a list, tuple or dict"
        if not ok:
            group.dag.record_problem(
                f"mapped task group {group.group_id!r}: {kind}() argument {name!r} must be "
                f"{what} or a task's output, got {type(value).__name__}",
                group._site,
            )
