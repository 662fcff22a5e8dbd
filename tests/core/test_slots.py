"""Which tries must claim slots, and the bound that spares most DAGs the cost."""

from __future__ import annotations

from chalicelib.core.slots import UNBOUNDED, claims_for, max_parallelism_bound, wait_rank
from tests.core.simulation import literal_mapping, make_spec


def test_parallelism_bound() -> None:
    chain = make_spec({"a": ["b"], "b": ["c"]})
    assert max_parallelism_bound(chain) == 1
    fan = make_spec({"start": ["w1", "w2", "w3"], "w1": ["end"], "w2": ["end"], "w3": ["end"]})
    assert max_parallelism_bound(fan) == 3
    mapped = make_spec({"m": []}, m={"mapping": literal_mapping(3)})
    assert max_parallelism_bound(mapped) == UNBOUNDED


def test_claims_only_where_a_limit_can_bind() -> None:
    chain = make_spec({"a": ["b"]})  # width 1 x 16 runs <= 16 tasks: never binds
    assert claims_for(chain, "a", {}) == ()
    limited = make_spec({"a": []}).model_copy(update={"max_active_tasks": 8})
    (claim,) = claims_for(limited, "a", {})  # 16 runs could run 16 > 8 tries
    assert (claim.key, claim.amount, claim.limit) == ("dag:sim", 1, 8)


def test_pool_claims() -> None:
    spec = make_spec({"a": [], "b": []}, a={"pool": "etl", "pool_slots": 2})
    spec = spec.model_copy(update={"max_active_runs": 1})
    assert [(c.key, c.amount, c.limit) for c in claims_for(spec, "a", {"etl": 3})] == [
        ("pool:etl", 2, 3)
    ]
    assert claims_for(spec, "b", {"etl": 3}) == ()  # default_pool is not configured
    # a pool nobody created: a claim that can never be met, so the try waits (as Airflow)
    assert [(c.key, c.limit) for c in claims_for(spec, "a", {})] == [("pool:etl", 0)]


def test_wait_rank_orders_by_priority_then_time() -> None:
    ranks = [
        wait_rank(1, "2024-01-01T00:00:01"),
        wait_rank(5, "2024-01-01T00:00:09"),
        wait_rank(1, "2024-01-01T00:00:00"),
    ]
    assert sorted(ranks) == [ranks[1], ranks[2], ranks[0]]
