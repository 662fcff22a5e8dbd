"""Which tries must claim slots, and the bound that spares most DAGs the cost."""

from __future__ import annotations

import itertools
import random

from chalicelib.core.slots import (
    UNBOUNDED,
    claims_for,
    max_parallelism_bound,
    run_width_bound,
    task_limit_keys,
    task_width_bound,
    wait_rank,
)
from chalicelib.core.spec import DagSpec
from chalicelib.core.trigger_rules import TriggerRule
from tests.core.simulation import literal_mapping, make_spec, xcom_mapping


def test_parallelism_bound() -> None:
    chain = make_spec({"a": ["b"], "b": ["c"]})
    assert max_parallelism_bound(chain) == 1
    fan = make_spec({"start": ["w1", "w2", "w3"], "w1": ["end"], "w2": ["end"], "w3": ["end"]})
    assert max_parallelism_bound(fan) == 3
    mapped = make_spec({"m": []}, m={"mapping": literal_mapping(3)})
    assert max_parallelism_bound(mapped) == UNBOUNDED


def test_early_firing_rules_do_not_extend_a_never_concurrent_chain() -> None:
    # "join" fires on one_success as soon as "fast" succeeds, while "slow"
    # still runs, and "tail" runs after join: slow, join and tail can overlap.
    edges = {"fast": ["join"], "slow": ["join"], "join": ["tail"]}
    waiting = make_spec(edges)
    assert max_parallelism_bound(waiting) == 2  # fast|slow, then join, then tail
    early = make_spec(edges, join={"trigger_rule": TriggerRule.ONE_SUCCESS})
    assert max_parallelism_bound(early) == 3
    always = make_spec({"a": ["b"]}, b={"trigger_rule": TriggerRule.ALWAYS})
    assert max_parallelism_bound(always) == 2


def test_expanded_width_bounds_a_mapped_run() -> None:
    # items -> work[N] -> done: only work's N tries can overlap
    spec = make_spec({"items": ["work"], "work": ["done"]}, work={"mapping": xcom_mapping("items")})
    assert run_width_bound(spec, {}) == UNBOUNDED  # not expanded yet
    assert run_width_bound(spec, {"work": 500}) == 500
    assert run_width_bound(spec, {"work": 0}) == 1
    # a side task beside the map can run with all of it
    side = make_spec(
        {"items": ["work", "side"], "work": ["done"], "side": ["done"]},
        work={"mapping": xcom_mapping("items")},
    )
    assert run_width_bound(side, {"work": 500}) == 501
    # two maps in a row never overlap; the bound is the wider one
    two = make_spec(
        {"items": ["a"], "a": ["b"], "b": ["done"]},
        a={"mapping": xcom_mapping("items")},
        b={"mapping": xcom_mapping("items")},
    )
    assert run_width_bound(two, {"a": 30}) == UNBOUNDED  # b's width still unknown
    assert run_width_bound(two, {"a": 30, "b": 70}) == 70


def test_claims_only_where_a_limit_can_bind() -> None:
    chain = make_spec({"a": ["b"]})  # width 1 <= 16 tasks: never binds
    assert claims_for(chain, "a", {}, run_id="r1") == ()
    # max_active_tasks limits each run (Airflow 3): 16 runs of a one-task DAG
    # limited to 8 never claim, a run of 9 parallel tasks does, on its own counter
    single = make_spec({"a": []}).model_copy(update={"max_active_tasks": 8})
    assert claims_for(single, "a", {}, run_id="r1") == ()
    nine = make_spec({f"t{i}": [] for i in range(9)}).model_copy(update={"max_active_tasks": 8})
    (claim,) = claims_for(nine, "t0", {}, run_id="r1")
    assert (claim.key, claim.amount, claim.limit) == ("dagrun:sim#r1", 1, 8)
    mapped = make_spec({"items": ["work"]}, work={"mapping": xcom_mapping("items")})
    one_run = mapped.model_copy(update={"max_active_runs": 1, "max_active_tasks": 16})
    assert claims_for(one_run, "work", {}, run_id="r1") != ()  # width unknown: claims
    assert (
        claims_for(one_run, "work", {}, bound=run_width_bound(one_run, {"work": 15}), run_id="r1")
        == ()
    )
    assert (
        claims_for(one_run, "work", {}, bound=run_width_bound(one_run, {"work": 17}), run_id="r1")
        != ()
    )


def test_pool_claims() -> None:
    spec = make_spec({"a": [], "b": []}, a={"pool": "etl", "pool_slots": 2})
    spec = spec.model_copy(update={"max_active_runs": 1})
    assert [(c.key, c.amount, c.limit) for c in claims_for(spec, "a", {"etl": 3}, run_id="r1")] == [
        ("pool:etl", 2, 3)
    ]
    assert claims_for(spec, "b", {"etl": 3}, run_id="r1") == ()  # default_pool is not configured
    # a pool nobody created: a claim that can never be met, so the try waits (as Airflow)
    assert [(c.key, c.limit) for c in claims_for(spec, "a", {}, run_id="r1")] == [("pool:etl", 0)]


def test_wait_rank_orders_by_priority_then_time() -> None:
    ranks = [
        wait_rank(1, "2024-01-01T00:00:01"),
        wait_rank(5, "2024-01-01T00:00:09"),
        wait_rank(1, "2024-01-01T00:00:00"),
    ]
    assert sorted(ranks) == [ranks[1], ranks[2], ranks[0]]


def test_a_task_is_bounded_by_what_can_run_beside_it() -> None:
    spec = make_spec(
        {"items": ["work", "side"], "work": ["done"], "side": ["done"]},
        work={"mapping": xcom_mapping("items")},
    )
    # "items" runs before everything and "done" after: nothing overlaps them,
    # even while the map's width is unknown.
    assert task_width_bound(spec, "items", {}) == 1
    assert task_width_bound(spec, "done", {}) == 1
    # "side" overlaps the map, whose width must be known first
    assert task_width_bound(spec, "side", {}) == UNBOUNDED
    assert task_width_bound(spec, "side", {"work": 40}) == 41
    assert task_width_bound(spec, "work", {"work": 40}) == 41
    # an early-firing join can run while the map still does
    early = make_spec(
        {"items": ["work", "side"], "work": ["done"], "side": ["done"]},
        work={"mapping": xcom_mapping("items")},
        done={"trigger_rule": TriggerRule.ONE_SUCCESS},
    )
    assert task_width_bound(early, "done", {}) == UNBOUNDED
    assert task_width_bound(early, "done", {"work": 40}) == 42


def _parallel_chains(chains: int, length: int) -> dict[str, list[str]]:
    edges: dict[str, list[str]] = {}
    for c in range(chains):
        for i in range(length):
            edges[f"c{c}_{i}"] = [f"c{c}_{i + 1}"] if i + 1 < length else []
    return edges


def test_parallel_chains_are_as_wide_as_their_number() -> None:
    # 10 chains of 10 can run 10 tries at once, not 100 - 10 + 1: with
    # max_active_tasks 10 no try claims a slot, however many runs are active
    # (each claim is a transaction on the run's counter, and its release a
    # query of the waiting index: bench/throughput.py).
    spec = make_spec(_parallel_chains(10, 10))
    assert max_parallelism_bound(spec) == 10
    limits = spec.model_copy(update={"max_active_runs": 100, "max_active_tasks": 10})
    assert claims_for(limits, "c0_5", {}, run_id="r1") == ()
    assert claims_for(limits.model_copy(update={"max_active_tasks": 9}), "c0_5", {}, run_id="r1")
    # chains that share a head and a join: start, 3 x 4 tasks, join
    edges = {"start": ["c0_0", "c1_0", "c2_0"], **_parallel_chains(3, 4)}
    edges.update({f"c{c}_3": ["join"] for c in range(3)})
    assert max_parallelism_bound(make_spec(edges)) == 3
    # an early-firing task does not extend a chain
    early = make_spec(_parallel_chains(2, 3), c0_1={"trigger_rule": TriggerRule.ONE_SUCCESS})
    assert max_parallelism_bound(early) == 3


def _exact_width(spec: DagSpec) -> int:
    """The most tasks that can be active at once, by brute force: a set no two
    of which are ordered by a path on which every task waits for all upstream."""
    early = {TriggerRule.ONE_SUCCESS, TriggerRule.ONE_FAILED, TriggerRule.ONE_DONE}
    early.add(TriggerRule.ALWAYS)
    after: dict[str, set[str]] = {}
    for tid in reversed(spec.topological_order):
        found: set[str] = set()
        for down in spec.tasks[tid].downstream:
            if spec.tasks[down].trigger_rule not in early:
                found |= {down} | after[down]
        after[tid] = found
    ids = list(spec.tasks)
    best = 0
    for size in range(1, len(ids) + 1):
        for group in itertools.combinations(ids, size):
            if all(
                b not in after[a] and a not in after[b] for a, b in itertools.combinations(group, 2)
            ):
                best = size
                break
    return best


def test_the_bound_is_never_below_the_true_width() -> None:
    rng = random.Random(3)
    for _ in range(300):
        n = rng.randint(1, 8)
        ids = [f"t{i}" for i in range(n)]
        edges = {t: [d for d in ids[i + 1 :] if rng.random() < 0.3] for i, t in enumerate(ids)}
        rules = {t: {"trigger_rule": TriggerRule.ONE_SUCCESS} for t in ids if rng.random() < 0.15}
        spec = make_spec(edges, **rules)
        assert max_parallelism_bound(spec) >= _exact_width(spec), edges


def test_a_tasks_own_limits_claim_only_where_they_can_bind() -> None:
    spec = make_spec(
        {"items": ["work"], "solo": []},
        solo={"max_active_tis_per_dag": 1, "max_active_tis_per_dagrun": 1},
        work={"mapping": xcom_mapping("items"), "max_active_tis_per_dagrun": 4},
    )

    def own(spec: DagSpec, task_id: str) -> list[tuple[str, int, int]]:
        claims = claims_for(spec, task_id, {}, run_id="r1")
        return [(c.key, c.amount, c.limit) for c in claims if not c.key.startswith("dagrun:")]

    # one instance per run, up to 16 runs: the per-DAG limit binds, the per-run one cannot
    assert own(spec, "solo") == [("task:sim:solo", 1, 1)]
    assert own(spec, "work") == [("runtask:sim#r1:work", 1, 4)]
    assert own(spec.model_copy(update={"max_active_runs": 1}), "solo") == []  # 1 x 1 <= 1
    # the map's width is unknown before it expands: each run's max_active_tasks may bind
    assert task_limit_keys(spec, ["r1", "r2"]) == {
        "dagrun:sim#r1",
        "dagrun:sim#r2",
        "task:sim:solo",
        "runtask:sim#r1:work",
        "runtask:sim#r2:work",
    }
    unmapped = make_spec({"a": [], "b": []}, a={"max_active_tis_per_dag": 1})
    assert task_limit_keys(unmapped, ["r1"]) == {"task:sim:a"}  # 2 tasks never reach 16
