"""Checks over a DagSpec alone, so deploy tools and the control plane agree on "valid".

Every check returns problems instead of raising, so one pass reports them all;
each problem carries the task's line where the spec records one. Work is
linear in tasks plus edges: a 10,000-task DAG validates in milliseconds.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.core.errors import Problem, ScheduleError, SlipstreamError
from chalicelib.core.group_mapping import same_group
from chalicelib.core.map_sources import leaf_sources
from chalicelib.core.param_formats import conforms
from chalicelib.core.setup_teardown import setup_teardown_messages
from chalicelib.core.spec import EXECUTOR_KINDS, WEIGHT_RULES, DagSpec, TaskSpec
from chalicelib.core.values import decode

ID_PATTERN = re.compile(r"^[\w.-]+$")
MAX_ID_LENGTH = 250
LAMBDA_MAX_SECONDS = 900
"""Lambda stops a function at 15 minutes (the worker's timeout): a longer try needs ECS."""
# Airflow refuses to schedule these without a start_date ("DAG is missing the
# start_date parameter"); only manual (schedule=None) and event DAGs go without.
TIMETABLES_NEEDING_START = frozenset(
    {"cron", "cron_trigger", "delta", "delta_trigger", "once", "continuous"}
)


def validate_spec(spec: DagSpec, *, file: str | None = None) -> list[Problem]:
    """All problems of ``spec``; ``file`` overrides ``spec.fileloc`` in the problems
    (the SDK passes the path as the user typed it)."""
    where = file if file is not None else spec.fileloc
    problems: list[Problem] = []

    def dag_problem(message: str) -> None:
        problems.append(Problem(message, file=where, line=spec.line, dag_id=spec.dag_id))

    def task_problem(task: TaskSpec, message: str) -> None:
        problems.append(
            Problem(message, file=where, line=task.line, dag_id=spec.dag_id, task_id=task.task_id)
        )

    for message in _dag_messages(spec):
        dag_problem(message)
    for task in spec.tasks.values():
        for message in _task_messages(spec, task):
            task_problem(task, message)
    for cycle in find_cycles(spec):
        task_problem(spec.tasks[cycle[0]], "cycle: " + " -> ".join([*cycle, cycle[0]]))
    return problems


def _dag_messages(spec: DagSpec) -> Iterator[str]:
    if not _valid_id(spec.dag_id):
        yield (
            f"dag_id {spec.dag_id!r} may contain only letters, digits, '_', '-' and '.' "
            f"(at most {MAX_ID_LENGTH} characters)"
        )
    zone_ok = _zone_exists(spec.timezone)
    if not zone_ok:
        yield f"unknown timezone {spec.timezone!r}; use an IANA name such as 'Europe/Paris'"
    if spec.start_date and spec.end_date and spec.start_date > spec.end_date:
        yield (
            f"start_date {spec.start_date.isoformat()} is after end_date "
            f"{spec.end_date.isoformat()}"
        )
    kind = spec.timetable.type
    if kind in TIMETABLES_NEEDING_START and spec.start_date is None:
        yield f"a {kind!r} schedule needs a start_date (only schedule=None or events may omit it)"
    check = getattr(spec.timetable, "validate", None)
    if check is not None and zone_ok:
        try:
            check()
        except (ScheduleError, ValueError) as exc:
            yield f"bad schedule: {exc}"
    if spec.max_active_runs < 1:
        yield f"max_active_runs must be at least 1, got {spec.max_active_runs}"
    if spec.max_active_tasks < 1:
        yield f"max_active_tasks must be at least 1, got {spec.max_active_tasks}"
    if spec.dagrun_timeout is not None and spec.dagrun_timeout <= 0:
        yield f"dagrun_timeout must be positive, got {spec.dagrun_timeout} s"
    for name, param in spec.params.items():
        if param.has_default:
            problem = param_value_problem(name, decode(param.default), param.schema_)
            if problem:
                yield f"default of {problem}"


def _task_messages(spec: DagSpec, task: TaskSpec) -> Iterator[str]:
    if not _valid_id(task.task_id):
        yield (
            f"task_id {task.task_id!r} may contain only letters, digits, '_', '-' and '.' "
            f"(at most {MAX_ID_LENGTH} characters)"
        )
    for upstream in task.upstream:
        if upstream not in spec.tasks:
            yield f"upstream task {upstream!r} is not in this DAG"
    for downstream in task.downstream:
        if downstream not in spec.tasks:
            yield f"downstream task {downstream!r} is not in this DAG"
    if task.retries < 0:
        yield f"retries must not be negative, got {task.retries}"
    if task.retry_delay < 0:
        yield f"retry_delay must not be negative, got {task.retry_delay} s"
    if task.max_retry_delay is not None and task.max_retry_delay < 0:
        yield f"max_retry_delay must not be negative, got {task.max_retry_delay} s"
    if task.execution_timeout is not None and task.execution_timeout <= 0:
        yield f"execution_timeout must be positive, got {task.execution_timeout} s"
    if not task.pool.strip():
        yield "pool name must not be empty"
    if task.pool_slots < 1:
        yield f"pool_slots must be at least 1, got {task.pool_slots}"
    if task.weight_rule not in WEIGHT_RULES:
        yield f"unknown weight_rule {task.weight_rule!r}; choose one of: {', '.join(WEIGHT_RULES)}"
    yield from _executor_messages(task)
    yield from setup_teardown_messages(spec.tasks, task)
    if task.mapping is not None:
        yield from _mapping_messages(spec, task)
    for name, param in task.params.items():
        if param.has_default:
            problem = param_value_problem(name, decode(param.default), param.schema_)
            if problem:
                yield f"default of {problem}"


def _executor_messages(task: TaskSpec) -> Iterator[str]:
    executor = task.executor
    if executor.kind not in EXECUTOR_KINDS:
        yield f"unknown executor {executor.kind!r}; choose one of: {', '.join(EXECUTOR_KINDS)}"
        return
    container = {"image": executor.image, "cpu": executor.cpu, "memory": executor.memory}
    set_fields = [name for name, value in container.items() if value is not None]
    if executor.kind != "ecs" and (set_fields or executor.task_role_arn):
        fields = set_fields + (["task_role_arn"] if executor.task_role_arn else [])
        yield (
            f"executor {executor.kind!r} ignores container settings {', '.join(fields)}; use 'ecs'"
        )
    timeout = task.execution_timeout
    if executor.kind == "lambda" and timeout is not None and timeout > LAMBDA_MAX_SECONDS:
        yield (
            f"execution_timeout {timeout:g} s is longer than the worker Lambda's "
            f"{LAMBDA_MAX_SECONDS} s limit: run this task with executor='ecs'"
        )
    for name, amount in (("cpu", executor.cpu), ("memory", executor.memory)):
        if amount is not None and amount <= 0:
            yield f"executor {name} must be positive, got {amount}"


def below_in_group(spec: DagSpec, task: TaskSpec) -> bool:
    """A mapped group's task below another of the group: the group's input is
    upstream of the group's first tasks, so of this one too."""
    return any(same_group(spec.tasks[u], task) for u in task.upstream if u in spec.tasks)


def _mapping_messages(spec: DagSpec, task: TaskSpec) -> Iterator[str]:
    assert task.mapping is not None
    leaves = [(n, leaf) for n, top in task.mapping.sources.items() for leaf in leaf_sources([top])]
    for name, source in leaves:
        if source.xcom_task_id is not None:
            if source.xcom_task_id not in spec.tasks:
                yield (
                    f"mapped argument {name!r} reads the result of unknown task "
                    f"{source.xcom_task_id!r}"
                )
            elif source.xcom_task_id not in task.upstream and not below_in_group(spec, task):
                yield (
                    f"mapped argument {name!r} reads the result of {source.xcom_task_id!r}, "
                    "which is not upstream"
                )
        elif source.literal_length is None and task.mapping.group is None:
            # (a mapped group's bad input is reported once, at its expand() line)
            kwargs_kind = task.mapping.kind == "expand_kwargs"
            expected = "a list of dicts" if kwargs_kind else "a list or dict"
            yield f"mapped argument {name!r} must be {expected} or an upstream task's result"


def find_cycles(spec: DagSpec) -> list[list[str]]:
    """One named cycle per strongly connected group of tasks (Tarjan, iteratively)."""
    graph = _adjacency(spec)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, position = work[-1]
            successors = graph[node]
            if position < len(successors):
                work[-1] = (node, position + 1)
                nxt = successors[position]
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    components.append(component)
    order = {tid: i for i, tid in enumerate(spec.tasks)}
    cycles = [_cycle_through(graph, sorted(c, key=order.__getitem__)) for c in components]
    return sorted(cycles, key=lambda cycle: order[cycle[0]])


def _adjacency(spec: DagSpec) -> dict[str, list[str]]:
    """Edges from both directions of the spec, so a hand-written spec cannot hide a cycle."""
    edges: dict[str, dict[str, None]] = {tid: {} for tid in spec.tasks}
    for tid, task in spec.tasks.items():
        for down in task.downstream:
            if down in edges:
                edges[tid][down] = None
        for up in task.upstream:
            if up in edges:
                edges[up][tid] = None
    return {tid: list(nexts) for tid, nexts in edges.items()}


def _cycle_through(graph: dict[str, list[str]], component: list[str]) -> list[str]:
    """The shortest cycle from the component's first task back to itself (breadth first)."""
    start = component[0]
    members = set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in graph[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return list(reversed(path))
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]  # pragma: no cover - a strongly connected component always has a cycle


def _valid_id(value: str) -> bool:
    return len(value) <= MAX_ID_LENGTH and bool(ID_PATTERN.match(value))


def _zone_exists(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --------------------------------------------------------------- params
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}


def param_value_problem(name: str, value: Any, schema: Mapping[str, Any]) -> str | None:
    """Why ``value`` does not fit the schema's type, enum, format or bounds; None when it does.

    A deliberately small subset of JSON schema: what DAG params use in practice.
    """
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_json_type(value, n) for n in names):
            wanted = " or ".join(str(n) for n in names)
            return f"param {name!r}: {value!r} is not of type {wanted}"
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        return f"param {name!r}: {value!r} is not one of {list(enum)!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if minimum is not None and value < minimum:
            return f"param {name!r}: {value!r} is less than the minimum {minimum!r}"
        if maximum is not None and value > maximum:
            return f"param {name!r}: {value!r} is greater than the maximum {maximum!r}"
    form = schema.get("format")
    if isinstance(form, str) and not conforms(value, form):
        return f"param {name!r}: {value!r} is not a {form!r}"
    if isinstance(value, str):
        shortest, longest = schema.get("minLength"), schema.get("maxLength")
        if shortest is not None and len(value) < shortest:
            return f"param {name!r}: {value!r} is shorter than {shortest} characters"
        if longest is not None and len(value) > longest:
            return f"param {name!r}: {value!r} is longer than {longest} characters"
    return None


def _is_json_type(value: Any, type_name: str) -> bool:
    types = _JSON_TYPES.get(type_name)
    if types is None:
        return True  # an unknown type keyword constrains nothing we can check
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    if type_name == "number" and isinstance(value, float):
        return True
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, types)


def resolve_params(params: Mapping[str, Any], conf: Mapping[str, Any] | None) -> dict[str, Any]:
    """Run params: each ParamSpec default overridden by ``conf``, checked against its schema.

    Conf keys that declare no param pass through, as Airflow merges the whole
    conf into params. Raises SlipstreamError naming the offending param.
    """
    conf = dict(conf or {})
    resolved: dict[str, Any] = {}
    for name, param in params.items():
        if name in conf:
            value = conf.pop(name)
        elif param.has_default:
            value = decode(param.default)
        else:
            raise SlipstreamError(
                f"param {name!r} has no default; pass it in the run conf ({{{name!r}: ...}})"
            )
        problem = param_value_problem(name, value, param.schema_)
        if problem:
            raise SlipstreamError(problem)
        resolved[name] = value
    resolved.update(conf)
    return resolved
