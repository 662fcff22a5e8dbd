"""Concurrency limits: pools and a DAG's max_active_tasks, as slot claims.

``max_active_tasks`` limits the active tries of each run, as in Airflow 3
(apache/airflow#42953; Airflow 2 counted them across the DAG's runs), so its
counter is the run's own (``dag_run_key``).

A try that may exceed a limit claims slots before it is queued; a claim is a
conditional counter increment (``used <= limit - amount``) made in the same
transaction that queues the try, and the try gives its slots back when it
leaves QUEUED/RUNNING. Claims are only made where a limit can bind, so a DAG
that can never run more tries at once than it allows pays nothing for it; for
a mapped DAG that is known per try, once the maps it can overlap have expanded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.core.spec import DEFAULT_POOL, DagSpec
from chalicelib.core.trigger_rules import TriggerRule

UNBOUNDED = 10**9


@dataclass(frozen=True)
class SlotClaim:
    key: str  # "pool:<name>", "dagrun:<dag_id>#<run_id>", "task:...", "runtask:..."
    amount: int
    limit: int

    def encode(self) -> str:
        return f"{self.key}|{self.amount}"


def decode_held(held: str) -> tuple[str, int]:
    key, _, amount = held.rpartition("|")
    return key, int(amount)


def dag_run_key(dag_id: str, run_id: str) -> str:
    """The counter of one run's active tries, which max_active_tasks limits."""
    return f"dagrun:{dag_id}#{run_id}"


def pool_key(pool: str) -> str:
    return f"pool:{pool}"


def task_key(dag_id: str, task_id: str) -> str:
    """The counter of a task's active instances across its DAG's runs."""
    return f"task:{dag_id}:{task_id}"


def run_task_key(dag_id: str, run_id: str, task_id: str) -> str:
    """The counter of a task's active instances within one run."""
    return f"runtask:{dag_id}#{run_id}:{task_id}"


# Rules that start a task only once every upstream is done: such a task never
# runs alongside its upstreams. one_success / one_failed / one_done fire early
# and always does not wait at all, so they can.
_EARLY_FIRING = frozenset(
    {TriggerRule.ONE_SUCCESS, TriggerRule.ONE_FAILED, TriggerRule.ONE_DONE, TriggerRule.ALWAYS}
)


def max_parallelism_bound(spec: DagSpec) -> int:
    """An upper bound on the tries of one run that can be active at once,
    known before the run starts: UNBOUNDED when a mapped task's width is unknown."""
    return run_width_bound(spec, {})


def run_width_bound(spec: DagSpec, mapped_counts: Mapping[str, int]) -> int:
    """An upper bound on the tries of one run active at once, given its expansions.

    Each task weighs its instance count (1, or a mapped task's expanded
    count); a mapped task not yet expanded makes the bound UNBOUNDED.
    """
    return _width(spec, spec.tasks.keys(), mapped_counts)


def task_width_bound(spec: DagSpec, task_id: str, mapped_counts: Mapping[str, int]) -> int:
    """An upper bound on the tries of one run active at once while a try of
    ``task_id`` is: its own instances plus every task that can overlap it.

    Tasks joined to ``task_id`` by a chain of tasks that each wait for all of
    their upstream never overlap it: a map's upstream has finished before the
    map expands, and its downstream starts after the whole map is done. So a
    first task can run claim-free even before the map below it has a width.
    """
    weight = _weight(spec, task_id, mapped_counts)
    if weight >= UNBOUNDED:
        return UNBOUNDED
    others = set(spec.tasks) - {task_id} - _ordered_with(spec, task_id)
    rest = _width(spec, others, mapped_counts)
    return UNBOUNDED if rest >= UNBOUNDED else weight + rest


def _weight(spec: DagSpec, task_id: str, mapped_counts: Mapping[str, int]) -> int:
    if spec.tasks[task_id].mapping is None:
        return 1
    return max(0, mapped_counts[task_id]) if task_id in mapped_counts else UNBOUNDED


def _ordered_with(spec: DagSpec, task_id: str) -> set[str]:
    """Tasks that run strictly before or after ``task_id`` (never alongside it)."""
    waits = {tid for tid, t in spec.tasks.items() if t.trigger_rule not in _EARLY_FIRING}
    found: set[str] = set()
    # before: while the task waits for all its upstream, all of them finish first
    stack = [task_id]
    while stack:
        tid = stack.pop()
        if tid not in waits:
            continue
        for up in spec.tasks[tid].upstream:
            if up not in found:
                found.add(up)
                stack.append(up)
    # after: a downstream that waits for all its upstream starts after this one ends
    stack = [task_id]
    seen_after: set[str] = set()
    while stack:
        tid = stack.pop()
        for down in spec.tasks[tid].downstream:
            if down in waits and down not in seen_after:
                seen_after.add(down)
                stack.append(down)
    return (found | seen_after) - {task_id}


def _width(spec: DagSpec, task_ids: Iterable[str], mapped_counts: Mapping[str, int]) -> int:
    """Tries of ``task_ids`` that can be active at once (an upper bound).

    Along a chain on which every task waits for all of its upstream, at most
    one task has active tries at a time, so at most ``total weight - chain
    weight + heaviest task on the chain`` can be active. The chain used is the
    heaviest one (any chain gives a sound bound). Cutting the tasks into
    disjoint such chains bounds it too, by the heaviest task of each chain
    (``_chain_cover``): that one counts parallel chains as their number, where
    the heaviest chain alone counts every task off it. The smaller bound wins.
    """
    members = set(task_ids)
    weight: dict[str, int] = {}
    for tid in members:
        weight[tid] = _weight(spec, tid, mapped_counts)
        if weight[tid] >= UNBOUNDED:
            return UNBOUNDED
    # heaviest chain ending at each task: (sum of weights, heaviest task on it)
    best: dict[str, tuple[int, int]] = {}
    for tid in spec.topological_order:
        if tid not in members:
            continue
        task = spec.tasks[tid]
        here = (weight[tid], weight[tid])
        if task.trigger_rule not in _EARLY_FIRING:
            for up in task.upstream:
                if up not in best:
                    continue
                total, heaviest = best[up]
                if total + weight[tid] > here[0]:
                    here = (total + weight[tid], max(heaviest, weight[tid]))
        best[tid] = here
    if not best:
        return 0
    chain_total, chain_heaviest = max(best.values())
    heaviest_chain = sum(weight.values()) - chain_total + chain_heaviest
    return min(heaviest_chain, _chain_cover(spec, weight))


def _chain_cover(spec: DagSpec, weight: Mapping[str, int]) -> int:
    """Sum of the heaviest task of each chain of a cover of ``weight``'s tasks
    by disjoint chains, made greedily in topological order: a task that waits
    for all of its upstream extends the chain of one of them that no other task
    extended yet (the one whose heaviest task is heaviest), or starts a chain.
    Any such cover is a sound bound: at most one task of a chain is active."""
    tail_of: dict[str, int] = {}  # task -> its chain, while the task is the chain's tail
    heaviest: list[int] = []  # per chain
    for tid in spec.topological_order:
        if tid not in weight:
            continue
        ups = [up for up in spec.tasks[tid].upstream if up in tail_of]
        if ups and spec.tasks[tid].trigger_rule not in _EARLY_FIRING:
            chain = tail_of.pop(max(ups, key=lambda up: heaviest[tail_of[up]]))
            heaviest[chain] = max(heaviest[chain], weight[tid])
        else:
            chain = len(heaviest)
            heaviest.append(weight[tid])
        tail_of[tid] = chain
    return sum(heaviest)


def claims_for(
    spec: DagSpec,
    task_id: str,
    pools: Mapping[str, int],
    *,
    bound: int | None = None,
    run_id: str,
) -> tuple[SlotClaim, ...]:
    """The claims a try of ``task_id`` in run ``run_id`` must make; ``pools`` maps
    configured pools to slots.

    An unconfigured pool (``default_pool`` unless an operator set it) does not
    limit; the DAG's max_active_tasks binds within the run only when the run
    can be wider than the limit (``bound``: its width while this try is active). A task's own
    limits bind only where it can have more instances than they allow: across
    runs when max_active_runs (times its map) exceeds max_active_tis_per_dag,
    within ``run_id`` only for a mapped task (an unmapped one has one instance).
    """
    task = spec.task(task_id)
    claims: list[SlotClaim] = []
    width = max_parallelism_bound(spec) if bound is None else bound
    runs = max(1, spec.max_active_runs)
    if width > spec.max_active_tasks:
        claims.append(SlotClaim(dag_run_key(spec.dag_id, run_id), 1, spec.max_active_tasks))
    per_dag = task.max_active_tis_per_dag
    if per_dag is not None and (task.mapping is not None or runs > per_dag):
        claims.append(SlotClaim(task_key(spec.dag_id, task_id), 1, per_dag))
    per_run = task.max_active_tis_per_dagrun
    if per_run is not None and task.mapping is not None:
        claims.append(SlotClaim(run_task_key(spec.dag_id, run_id, task_id), 1, per_run))
    if task.pool in pools:
        claims.append(SlotClaim(pool_key(task.pool), task.pool_slots, pools[task.pool]))
    elif task.pool != DEFAULT_POOL:
        claims.append(SlotClaim(pool_key(task.pool), task.pool_slots, 0))  # no such pool
    return tuple(claims)


def task_limit_keys(spec: DagSpec, run_ids: Iterable[str]) -> set[str]:
    """The counters the DAG's and the tasks' own limits claim in ``spec`` for these
    runs (for the tick, which starts waiting tries whose release was lost)."""
    run_ids = list(run_ids)
    keys: set[str] = set()
    if max_parallelism_bound(spec) > spec.max_active_tasks:
        keys.update(dag_run_key(spec.dag_id, run_id) for run_id in run_ids)
    for tid, task in spec.tasks.items():
        if task.max_active_tis_per_dag is not None:
            keys.add(task_key(spec.dag_id, tid))
        if task.max_active_tis_per_dagrun is not None and task.mapping is not None:
            keys.update(run_task_key(spec.dag_id, run_id, tid) for run_id in run_ids)
    return keys


def wait_rank(priority: int, queued_at: str) -> str:
    """Sort key of a waiting try: higher priority first, then first come."""
    return f"{UNBOUNDED - priority:010d}#{queued_at}"
