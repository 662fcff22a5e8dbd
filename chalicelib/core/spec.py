"""The serialized DAG: what the control plane reads instead of user code.

A spec is plain pydantic data that round-trips through JSON exactly. It holds
no callables (they are referenced as ``module:qualname`` inside the code
bundle) and no pickles. Its content hash names an immutable DAG version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.core import setup_teardown
from chalicelib.core.assets import AliasRef, AssetRef, Condition
from chalicelib.core.deadlines import DeadlineSpec
from chalicelib.core.events import EventTrigger
from chalicelib.core.fan_in import FanIns, find_fan_ins
from chalicelib.core.map_sources import drop_unused_source_fields
from chalicelib.core.timetable_base import NullTimetable
from chalicelib.core.timetables import Timetable
from chalicelib.core.trigger_rules import TriggerRule

EXECUTOR_KINDS = ("lambda", "ecs", "local")
WEIGHT_RULES = ("downstream", "upstream", "absolute")
DEFAULT_POOL = "default_pool"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutorSpec(_Frozen):
    """Where a task's tries run; container settings apply to ``ecs`` only."""

    kind: str = "lambda"
    image: str | None = None
    cpu: int | None = None
    memory: int | None = None
    task_role_arn: str | None = None


class ParamSpec(_Frozen):
    """A DAG or task param: its default plus an optional JSON-schema fragment."""

    default: Any = None
    has_default: bool = True
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class MapSource(_Frozen):
    """One expanded argument: a literal list/dict or an upstream result, or (Airflow's
    ``XComArg.zip``) several zipped sources; ``XComArg.map`` adds the functions the
    worker applies to each element, which keep the length (core.map_sources)."""

    literal_length: int | None = None
    xcom_task_id: str | None = None
    xcom_key: str = "return_value"
    map_callables: list[str] = Field(default_factory=list)  # "module:qualname", in order
    zip_sources: list[MapSource] = Field(default_factory=list)
    zip_longest: bool = False  # zip(..., fillvalue=...): the longest input's length


class MappingSpec(_Frozen):
    """Dynamic task mapping: ``expand`` takes a cross product of its sources,
    ``expand_kwargs`` one source whose items are kwargs dicts."""

    kind: Literal["expand", "expand_kwargs"] = "expand"
    sources: dict[str, MapSource]
    # Set on every task of a mapped task group (``@task_group`` ... ``.expand``):
    # the group whose input the task is mapped over, index by index with the
    # group's other tasks (core.group_mapping). ``sources`` are the group's.
    group: str | None = None


PAST_FIELDS = (
    "depends_on_past",
    "wait_for_downstream",
    "ignore_first_depends_on_past",
    "wait_for_past_depends_before_skipping",
)
"""TaskSpec fields left out of the hashed JSON while False (older specs keep their hash)."""


class TaskSpec(_Frozen):
    task_id: str
    display_name: str | None = None
    operator: str  # "module.QualName" of the operator class
    callable: str | None = None  # "module:qualname" of a python callable
    upstream: list[str] = Field(default_factory=list)
    downstream: list[str] = Field(default_factory=list)
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    retries: int = 0
    retry_delay: float = 300.0
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    execution_timeout: float | None = None
    pool: str = DEFAULT_POOL
    pool_slots: int = 1
    # How many instances of this task may be active at once across the DAG's
    # runs, and within one run (Airflow's max_active_tis_per_dag / _per_dagrun).
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    # Airflow's PrevDagrunDep (core.past): wait for this task, and with
    # wait_for_downstream for its direct downstream tasks, in the previous run.
    depends_on_past: bool = False
    wait_for_downstream: bool = False
    ignore_first_depends_on_past: bool = False
    wait_for_past_depends_before_skipping: bool = False
    priority_weight: int = 1
    weight_rule: str = "downstream"
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    flow: Literal["normal", "branch", "short_circuit"] = "normal"
    is_setup: bool = False
    is_teardown: bool = False  # trigger rule all_done_setup_success (core.setup_teardown)
    on_failure_fail_dagrun: bool = False  # a teardown's failure fails the run
    mapping: MappingSpec | None = None
    multiple_outputs: bool = False
    template_fields: list[str] = Field(default_factory=list)
    args: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    doc_md: str | None = None
    group_id: str | None = None
    on_success_callback: str | None = None
    on_failure_callback: str | None = None
    on_retry_callback: str | None = None
    on_execute_callback: str | None = None
    on_skipped_callback: str | None = None
    queue: str | None = None  # accepted from Airflow files; the executor decides where it runs
    map_index_template: str | None = None
    line: int | None = None
    outlets: list[AssetRef | AliasRef] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.display_name or self.task_id


class TaskGroupSpec(_Frozen):
    group_id: str
    display_name: str | None = None
    tooltip: str | None = None
    parent: str | None = None
    mapping: MappingSpec | None = None  # a mapped task group: what it expands over


class DagSpec(_Frozen):
    dag_id: str
    display_name: str | None = None
    description: str | None = None
    doc_md: str | None = None
    fileloc: str | None = None  # relative to the bundle root, so hashes agree across machines
    line: int | None = None
    timetable: Timetable = Field(default_factory=NullTimetable)
    events: list[EventTrigger] = Field(default_factory=list)
    asset_condition: Condition | None = None  # schedule=[assets] or a & (b | c)
    timezone: str = "UTC"
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    catchup: bool = False
    max_active_runs: int = 16
    max_active_tasks: int = 16
    dagrun_timeout: float | None = None
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    on_success_callback: str | None = None
    on_failure_callback: str | None = None
    # None: the deploy's own choice (new DAGs paused unless --unpause), as in Airflow.
    is_paused_upon_creation: bool | None = None
    render_template_as_native_obj: bool = False
    deadlines: list[DeadlineSpec] = Field(default_factory=list)  # DAG(deadline=...)
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    task_groups: dict[str, TaskGroupSpec] = Field(default_factory=dict)
    sdk_version: str

    @property
    def label(self) -> str:
        return self.display_name or self.dag_id

    def canonical_json(self) -> str:
        """Key-sorted compact JSON: the bytes the content hash is taken over."""
        data = self.model_dump(mode="json", by_alias=True)
        # Fields added after specs were first hashed are left out while unused, so
        # a DAG that does not use them keeps the version id it had.
        if data.get("asset_condition") is None:
            data.pop("asset_condition", None)
        if not data.get("deadlines"):
            data.pop("deadlines", None)
        for task in data["tasks"].values():
            if not task.get("outlets"):
                task.pop("outlets", None)
            for source in (task.get("mapping") or {}).get("sources", {}).values():
                drop_unused_source_fields(source)
            if task.get("mapping") and task["mapping"].get("group") is None:
                task["mapping"].pop("group", None)
            for unused in (*PAST_FIELDS, "is_teardown", "on_failure_fail_dagrun"):
                if not task.get(unused):
                    task.pop(unused, None)
        for group in data["task_groups"].values():
            if group.get("mapping") is None:
                group.pop("mapping", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def task(self, task_id: str) -> TaskSpec:
        from chalicelib.core.errors import UnknownTask

        try:
            return self.tasks[task_id]
        except KeyError:
            raise UnknownTask(f"DAG {self.dag_id!r} has no task {task_id!r}") from None

    @cached_property
    def past_wakes(self) -> dict[str, tuple[str, ...]]:
        """For each task, the depends_on_past tasks of the next run that its
        finishing here may unblock: itself, and the wait_for_downstream tasks
        directly upstream of it (core.past). Empty for most DAGs."""
        wakes: dict[str, list[str]] = {}
        for tid, task in self.tasks.items():
            if task.depends_on_past or task.wait_for_downstream:
                wakes.setdefault(tid, []).append(tid)
            if task.wait_for_downstream:
                for down in task.downstream:
                    wakes.setdefault(down, []).append(tid)
        return {tid: tuple(sorted(set(found))) for tid, found in wakes.items()}

    @cached_property
    def roots(self) -> list[str]:
        return [tid for tid, t in self.tasks.items() if not t.upstream]

    @cached_property
    def leaves(self) -> frozenset[str]:
        return frozenset(tid for tid, t in self.tasks.items() if not t.downstream)

    @cached_property
    def run_state_leaves(self) -> frozenset[str]:
        """The tasks whose failure fails the run: leaves, ignoring teardowns (Airflow)."""
        return setup_teardown.run_state_leaves(self.tasks)

    @cached_property
    def setup_scopes(self) -> dict[str, frozenset[str]]:
        """Task id -> the setups whose scope it is in (core.setup_teardown)."""
        return setup_teardown.setup_scopes(self.tasks)

    @cached_property
    def indirect_setups(self) -> dict[str, tuple[str, ...]]:
        """Task id -> setups of its scope that are not direct upstream: all must succeed."""
        return setup_teardown.indirect_setups(self.tasks, self.setup_scopes)

    @cached_property
    def setup_watchers(self) -> dict[str, tuple[str, ...]]:
        """Setup id -> tasks to evaluate again when it finishes, beyond its downstream."""
        return setup_teardown.setup_watchers(self.tasks, self.indirect_setups)

    @cached_property
    def topological_order(self) -> list[str]:
        """Task ids upstream first, ties by id: the order tables show tasks in."""
        waiting = {tid: len(t.upstream) for tid, t in self.tasks.items()}
        ready = sorted(tid for tid, n in waiting.items() if n == 0)
        order: list[str] = []
        while ready:
            tid = ready.pop(0)
            order.append(tid)
            released = []
            for down in self.tasks[tid].downstream:
                if down in waiting:
                    waiting[down] -= 1
                    if waiting[down] == 0:
                        released.append(down)
            ready = sorted([*ready, *released])
        # a cyclic spec never validates; keep every task listed anyway
        order.extend(tid for tid in self.tasks if tid not in set(order))
        return order

    @cached_property
    def fan_ins(self) -> FanIns:
        """Joins decided from counters of their upstream states (core.fan_in)."""
        return find_fan_ins(self.tasks)

    @cached_property
    def priorities(self) -> dict[str, int]:
        """Effective priority per task under its weight rule, as Airflow computes it."""
        return effective_priorities(self.tasks)

    @classmethod
    def from_json(cls, text: str | bytes) -> DagSpec:
        return cls.model_validate_json(text)


def effective_priorities(tasks: dict[str, TaskSpec]) -> dict[str, int]:
    """downstream: own weight plus every task below; upstream: plus every task above."""
    below = _reachable_sums(tasks, "downstream")
    above = _reachable_sums(tasks, "upstream")
    result: dict[str, int] = {}
    for tid, t in tasks.items():
        if t.weight_rule == "downstream":
            result[tid] = below[tid]
        elif t.weight_rule == "upstream":
            result[tid] = above[tid]
        else:
            result[tid] = t.priority_weight
    return result


def _reachable_sums(tasks: dict[str, TaskSpec], direction: str) -> dict[str, int]:
    """Sum of priority_weight over each task and every task reachable from it.

    Reachable sets are bitmasks built in topological order, so diamonds count
    once (as Airflow's get_flat_relatives does) and a 10,000-task chain costs
    milliseconds rather than a walk per task.
    """
    ids = list(tasks)
    bit = {tid: 1 << i for i, tid in enumerate(ids)}
    weights = [tasks[tid].priority_weight for tid in ids]
    uniform = len(set(weights)) <= 1
    reach: dict[str, int] = {}
    for tid in _post_order(tasks, direction):
        mask = bit[tid]
        for nxt in getattr(tasks[tid], direction):
            if nxt in reach:
                mask |= reach[nxt]
        reach[tid] = mask
    sums: dict[str, int] = {}
    for tid in ids:
        mask = reach.get(tid, bit[tid])
        if uniform:
            sums[tid] = mask.bit_count() * (weights[0] if weights else 1)
        else:
            sums[tid] = sum(weights[i] for i in range(mask.bit_length()) if mask >> i & 1)
    return sums


def _post_order(tasks: dict[str, TaskSpec], direction: str) -> list[str]:
    """Tasks ordered so every task comes after all tasks reachable from it."""
    order: list[str] = []
    state: dict[str, int] = {}
    for root in tasks:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            tid, idx = stack.pop()
            nexts = [n for n in getattr(tasks[tid], direction) if n in tasks]
            if idx < len(nexts):
                stack.append((tid, idx + 1))
                nxt = nexts[idx]
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[tid] = 2
                order.append(tid)
    return order
