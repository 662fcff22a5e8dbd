"""Concurrency limits: pools and a DAG's max_active_tasks, as slot claims.

A try that may exceed a limit claims slots before it is queued; a claim is a
conditional counter increment (``used <= limit - amount``) made in the same
transaction that queues the try, and the try gives its slots back when it
leaves QUEUED/RUNNING. Claims are only made where a limit can bind, so a DAG
that can never run more tries at once than it allows pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.core.spec import DEFAULT_POOL, DagSpec

UNBOUNDED = 10**9


@dataclass(frozen=True)
class SlotClaim:
    key: str  # "pool:<name>" or "dag:<dag_id>"
    amount: int
    limit: int

    def encode(self) -> str:
        return f"{self.key}|{self.amount}"


def decode_held(held: str) -> tuple[str, int]:
    key, _, amount = held.rpartition("|")
    return key, int(amount)


def dag_key(dag_id: str) -> str:
    return f"dag:{dag_id}"


def pool_key(pool: str) -> str:
    return f"pool:{pool}"


def max_parallelism_bound(spec: DagSpec) -> int:
    """An upper bound on the tries of one run that can be active at once.

    Tasks on one dependency chain never run together, so at most
    ``tasks - longest_chain + 1`` can; a mapped task's width is unknown.
    """
    if any(t.mapping is not None for t in spec.tasks.values()):
        return UNBOUNDED
    depth: dict[str, int] = {}
    for tid in spec.topological_order:
        ups = spec.tasks[tid].upstream
        depth[tid] = 1 + max((depth[u] for u in ups if u in depth), default=0)
    longest = max(depth.values(), default=0)
    return len(spec.tasks) - longest + 1


def claims_for(
    spec: DagSpec, task_id: str, pools: Mapping[str, int], *, bound: int | None = None
) -> tuple[SlotClaim, ...]:
    """The claims a try of ``task_id`` must make; ``pools`` maps configured pools to slots.

    An unconfigured pool (``default_pool`` unless an operator set it) does not
    limit; the DAG's max_active_tasks binds across its runs only when more than
    one run may be active or one run is wider than the limit.
    """
    task = spec.task(task_id)
    claims: list[SlotClaim] = []
    width = max_parallelism_bound(spec) if bound is None else bound
    runs = max(1, spec.max_active_runs)
    if width * runs > spec.max_active_tasks:
        claims.append(SlotClaim(dag_key(spec.dag_id), 1, spec.max_active_tasks))
    if task.pool in pools:
        claims.append(SlotClaim(pool_key(task.pool), task.pool_slots, pools[task.pool]))
    elif task.pool != DEFAULT_POOL:
        claims.append(SlotClaim(pool_key(task.pool), task.pool_slots, 0))  # no such pool
    return tuple(claims)


def wait_rank(priority: int, queued_at: str) -> str:
    """Sort key of a waiting try: higher priority first, then first come."""
    return f"{UNBOUNDED - priority:010d}#{queued_at}"
