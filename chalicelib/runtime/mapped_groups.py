"""What one instance of a mapped task group's task sees of the group's input.

Airflow hands the group function ``MappedArgument`` placeholders; at run time
each resolves to this instance's element of the group's input (the cross
product of ``expand`` arguments, or item ``map_index`` of ``expand_kwargs``),
picked by the same rules as a mapped task's (runtime.mapping). A result of a
task in the same group is pulled at the same map index; of any other mapped
task, as the list of all its instances' results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.core.errors import MappingError
from chalicelib.core.spec import DagSpec
from chalicelib.runtime.mapping import MappedArguments, arguments_for_index
from chalicelib.sdk.mapped_group import closest_mapped_group


def group_arguments(
    task: Any, map_index: int, context: dict[str, Any], xcoms: Any
) -> MappedArguments:
    """This instance's group arguments, kept on ``context["ti"]`` for the placeholders."""
    group = closest_mapped_group(getattr(task, "task_group", None))
    if group is None:
        raise MappingError(f"task {task.task_id!r} is not inside a mapped task group")
    arguments = arguments_for_index(group, map_index, context, xcoms)
    context["ti"].group_arguments = arguments.kwargs
    context["expanded_ti_count"] = arguments.total
    return arguments


def relevant_index_lookup(
    spec: DagSpec, task_id: str, map_index: int
) -> Callable[[str], int | None]:
    """For a task in a mapped group: the map index an upstream's result is read at
    (this one for a task of the same group, None for the others)."""
    tasks: Mapping[str, Any] = spec.tasks
    own = tasks[task_id].mapping
    group = own.group if own is not None else None

    def relevant(upstream_id: str) -> int | None:
        if group is None or map_index < 0:
            return None
        upstream = tasks.get(upstream_id)
        mapping = upstream.mapping if upstream is not None else None
        return map_index if mapping is not None and mapping.group == group else None

    return relevant
