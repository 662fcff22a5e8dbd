"""The deploy's asset writes: each asset a DAG names gets its row, and the
consumer index (asset URI -> DAGs scheduled on it) follows the current versions,
so an asset event finds its consumers with one Query whatever the number of DAGs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from chalicelib.core.assets import AssetRef, consumed_uris, leaves
from chalicelib.core.spec import DagSpec
from chalicelib.store.assets import AssetStore


def asset_store_of(store: Any) -> AssetStore | None:
    """The assets table beside a DynamoDB state store; None for the in-memory store."""
    model = getattr(getattr(store, "models", None), "asset", None)
    return None if model is None else AssetStore(model)


def named_assets(spec: DagSpec) -> list[AssetRef]:
    """Every asset the DAG produces (outlets) or waits for (schedule)."""
    refs = [r for task in spec.tasks.values() for r in task.outlets if isinstance(r, AssetRef)]
    if spec.asset_condition is not None:
        refs += [leaf for leaf in leaves(spec.asset_condition) if isinstance(leaf, AssetRef)]
    return refs


def index_assets(
    assets: AssetStore, specs: Iterable[DagSpec], gone: Iterable[str], now: dt.datetime
) -> None:
    """Write asset rows and point each deployed DAG's consumer rows at its version."""
    specs = list(specs)
    assets.register([ref for spec in specs for ref in named_assets(spec)], now)
    for spec in specs:
        produces = [
            (ref.uri, task.task_id)
            for task in spec.tasks.values()
            for ref in task.outlets
            if isinstance(ref, AssetRef)
        ]
        assets.set_dag_assets(spec.dag_id, consumed_uris(spec.asset_condition), produces, now)
    for dag_id in gone:
        assets.set_dag_assets(dag_id, [], [], now)
