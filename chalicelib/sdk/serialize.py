"""DAG objects -> DagSpec: plain data, no callables, identical bytes on every machine.

What makes the hash stable: file paths relative to the bundle root, module
names of DAG files derived from those paths (the loader imports each file
under a private unique name), sorted edges, sets sorted, and no ``id()`` or
memory address anywhere. One pass over the tasks, no deep copies: a
10,000-task DAG serializes in well under a second.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import os
import sys
from typing import Any

import chalicelib
from chalicelib.core.spec import DagSpec, MappingSpec, MapSource, TaskGroupSpec, TaskSpec
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.core.values import OPAQUE_TAG, TUPLE_TAG, callable_ref, encode, is_tagged
from chalicelib.sdk.baseoperator import BASE_OPERATOR_ARGS, BaseOperator
from chalicelib.sdk.dag import DAG
from chalicelib.sdk.deadline import deadline_specs
from chalicelib.sdk.dependencies import TaskNode
from chalicelib.sdk.mapped import EXPAND_KWARGS_SOURCE, MappedOperator, is_mappable_literal
from chalicelib.sdk.mapped_group import MappedTaskGroup, closest_mapped_group
from chalicelib.sdk.params import params_to_spec
from chalicelib.sdk.xcom_arg import ResolvableArg, XComArg
from chalicelib.sdk.xcom_arg_ops import ComposedXComArg

# Where a mapped task's literal sources are kept in TaskSpec.args, so a change of
# the mapped values changes the hash even though MappingSpec records only lengths.
EXPAND_INPUT_ARG = "expand_input"
DAG_FILE_ATTRIBUTE = "__slipstream_dag_file__"


def dag_to_spec(dag: DAG, bundle_root: str | None = None) -> DagSpec:
    root = os.path.abspath(bundle_root) if bundle_root is not None else os.getcwd()
    refs = _References(root)
    timetable, events = dag.schedule_parts()
    tasks = {node.task_id: _task_spec(node, dag, refs) for node in dag.task_dict.values()}
    groups = {
        group_id: TaskGroupSpec(
            group_id=group_id,
            display_name=group.display_name,
            tooltip=group.tooltip or None,
            parent=group.parent_group.group_id if group.parent_group else None,
            mapping=_mapping_spec(group, refs) if isinstance(group, MappedTaskGroup) else None,
        )
        for group_id, group in dag.task_group_dict.items()
    }
    return DagSpec(
        dag_id=dag.dag_id,
        display_name=dag.display_name,
        description=dag.description,
        doc_md=dag.doc_md,
        fileloc=refs.relative_file(dag.fileloc),
        line=dag.line,
        timetable=timetable,
        events=events,
        asset_condition=dag.asset_condition,
        timezone=dag.timezone,
        start_date=_utc(dag.start_date),
        end_date=_utc(dag.end_date),
        catchup=dag.catchup,
        max_active_runs=dag.max_active_runs,
        max_active_tasks=dag.max_active_tasks,
        dagrun_timeout=dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
        params=params_to_spec(dag.params),
        tags=dag.tags,
        on_success_callback=refs.callbacks(dag.on_success_callback),
        on_failure_callback=refs.callbacks(dag.on_failure_callback),
        is_paused_upon_creation=dag.is_paused_upon_creation,
        render_template_as_native_obj=dag.render_template_as_native_obj,
        deadlines=deadline_specs(dag.deadline, refs.callable_ref),
        tasks=tasks,
        task_groups=groups,
        sdk_version=chalicelib.__version__,
    )


def _task_spec(node: TaskNode, dag: DAG, refs: _References) -> TaskSpec:
    t: Any = node
    mapped_group: MappedTaskGroup | None = None
    if isinstance(node, MappedOperator):
        operator_class: type = node.operator_class
        given = node.partial_kwargs
        mapping = _mapping_spec(node, refs)
    else:
        operator_class = type(node)
        given = getattr(node, "_init_kwargs", {})
        mapping = None
        mapped_group = closest_mapped_group(node.task_group)
        if mapped_group is not None:  # mapped over its group's input (core.group_mapping)
            mapping = _mapping_spec(mapped_group, refs).model_copy(
                update={"group": mapped_group.group_id}
            )
    args = {
        name: refs.encode(value)
        for name, value in given.items()
        if name not in BASE_OPERATOR_ARGS and name != "python_callable"
    }
    if isinstance(node, BaseOperator):
        for field in node.template_fields:
            args[field] = refs.encode(getattr(node, field, None))
    else:
        assert isinstance(node, MappedOperator)
        args[EXPAND_INPUT_ARG] = refs.encode(node.expand_input)
    if mapped_group is not None:
        args[EXPAND_INPUT_ARG] = refs.encode(mapped_group.expand_input)
    python_callable = given.get("python_callable")
    site_file, site_line = node._site
    rule = t.trigger_rule
    return TaskSpec(
        task_id=node.task_id,
        display_name=t.display_name,
        operator=refs.class_ref(operator_class),
        callable=refs.callable_ref(python_callable) if callable(python_callable) else None,
        upstream=sorted(node._upstream),
        downstream=sorted(node._downstream),
        trigger_rule=rule if isinstance(rule, TriggerRule) else TriggerRule.ALL_SUCCESS,
        retries=t.retries,
        retry_delay=t.retry_delay.total_seconds(),
        retry_exponential_backoff=t.retry_exponential_backoff,
        max_retry_delay=_seconds(t.max_retry_delay),
        execution_timeout=_seconds(t.execution_timeout),
        pool=t.pool,
        pool_slots=t.pool_slots,
        max_active_tis_per_dag=t.max_active_tis_per_dag,
        max_active_tis_per_dagrun=t.max_active_tis_per_dagrun,
        depends_on_past=t.depends_on_past,
        wait_for_downstream=t.wait_for_downstream,
        ignore_first_depends_on_past=t.ignore_first_depends_on_past,
        wait_for_past_depends_before_skipping=t.wait_for_past_depends_before_skipping,
        priority_weight=t.priority_weight,
        weight_rule=t.weight_rule,
        executor=t.executor.to_spec(),
        flow=t.flow if t.flow in ("branch", "short_circuit") else "normal",
        is_setup=bool(t.is_setup),
        is_teardown=bool(t.is_teardown),
        on_failure_fail_dagrun=bool(t.on_failure_fail_dagrun),
        mapping=mapping,
        multiple_outputs=t.multiple_outputs,
        template_fields=list(t.template_fields),
        args=args,
        params=params_to_spec(t.params),
        doc_md=t.doc_md,
        group_id=node.task_group.group_id if node.task_group else None,
        on_success_callback=refs.callbacks(t.on_success_callback),
        on_failure_callback=refs.callbacks(t.on_failure_callback),
        on_retry_callback=refs.callbacks(t.on_retry_callback),
        on_execute_callback=refs.callbacks(t.on_execute_callback),
        on_skipped_callback=refs.callbacks(t.on_skipped_callback),
        queue=t.queue,
        map_index_template=t.map_index_template,
        line=site_line if site_file == dag.fileloc_raw else None,
        outlets=list(getattr(t, "outlet_refs", [])),
    )


def _mapping_spec(node: MappedOperator | MappedTaskGroup, refs: _References) -> MappingSpec:
    sources: dict[str, MapSource] = {}
    for name, value in node.expand_input.items():
        if isinstance(value, ComposedXComArg):  # XComArg.map / .zip
            sources[name] = value.map_source(refs)
        elif isinstance(value, XComArg):
            sources[name] = MapSource(xcom_task_id=value.operator.task_id, xcom_key=value.key)
        elif node.expand_kind == "expand_kwargs" and name == EXPAND_KWARGS_SOURCE:
            ok = isinstance(value, (list, tuple))
            sources[name] = MapSource(literal_length=len(value) if ok else None)
        elif is_mappable_literal(value):
            sources[name] = MapSource(literal_length=len(value))
        else:
            sources[name] = MapSource()
    return MappingSpec(kind=node.expand_kind, sources=sources)


def _seconds(value: dt.timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Specs hold instants in UTC; the DAG's timezone is a separate field."""
    return value.astimezone(dt.UTC) if value is not None else None


class _References:
    """Names for code inside the bundle that do not depend on how it was imported."""

    def __init__(self, root: str):
        self.root = root
        self._modules: dict[str, str] = {}

    def relative_file(self, path: str | None) -> str | None:
        if path is None:
            return None
        relative = os.path.relpath(path, self.root) if _inside(path, self.root) else None
        return (relative or os.path.basename(path)).replace(os.sep, "/")

    def module_name(self, module: str) -> str:
        cached = self._modules.get(module)
        if cached is not None:
            return cached
        name = module
        loaded = sys.modules.get(module)
        path = getattr(loaded, DAG_FILE_ATTRIBUTE, None)
        if path is None and module == "__main__":
            path = getattr(loaded, "__file__", None)
        if path:
            relative = self.relative_file(os.path.abspath(path)) or module
            name = relative.removesuffix(".py").replace("/", ".")
        self._modules[module] = name
        return name

    def class_ref(self, cls: type) -> str:
        return f"{self.module_name(cls.__module__)}.{cls.__qualname__}"

    def callable_ref(self, value: Any) -> str:
        target = value
        while isinstance(target, functools.partial):
            target = target.func
        target = getattr(target, "__func__", target)  # bound methods
        if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.isbuiltin(target)):
            target = type(target)  # a callable object: its class
        module = getattr(target, "__module__", None) or "builtins"
        qualname = getattr(target, "__qualname__", None) or repr(target)
        return str(callable_ref(self.module_name(module), qualname)["__callable__"])

    def callbacks(self, value: Any) -> str | None:
        if value is None:
            return None
        items = value if isinstance(value, (list, tuple)) else [value]
        return ",".join(self.callable_ref(item) for item in items)

    def encode(self, value: Any) -> Any:
        """values.encode, except callables become bundle references and classes of DAG
        files get their stable module names."""
        if isinstance(value, ComposedXComArg):
            return value.describe(self)
        if isinstance(value, ResolvableArg):
            return encode(value)
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: self.encode(v) for k, v in value.items()}
            return encode(value)
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, tuple):
            return {TUPLE_TAG: [self.encode(v) for v in value]}
        if isinstance(value, (set, frozenset)):
            items = [self.encode(v) for v in value]
            return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, default=str))
        if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismethod(value):
            return callable_ref(*self.callable_ref(value).split(":", 1))
        if isinstance(value, functools.partial):
            return callable_ref(*self.callable_ref(value).split(":", 1))
        encoded = encode(value)
        if is_tagged(encoded, OPAQUE_TAG) and not isinstance(value, float):
            kind = type(value)
            if getattr(value, "__slipstream_encode__", None) is None:
                return {OPAQUE_TAG: self.class_ref(kind)}
        return encoded


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), root]) == root
    except ValueError:
        return False
