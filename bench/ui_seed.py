"""Fast seeding for bench/ui_load.py: DAGs written straight into moto's tables.

A deploy through the store makes five DynamoDB calls per DAG (read the row,
look for the version, bump the version counter, put the version, put the row)
over HTTP to the local moto server; on this loaded machine 1,000 DAGs took
minutes, so the DAG list at 1,000 DAGs had never been measured. Here the DAG
files are planned exactly as ``slipstream deploy`` plans them
(:func:`plan_deploy`: imported, validated, bundled), the bundle goes to the
bundle store as a deploy puts it, and then each DAG's three items (its
version, the version counter, its DAG row) are built with the store's own
pynamodb models, field for field as ``put_dag_version`` and ``upsert_dag``
write a first deploy, and put into moto's in-process tables without HTTP.

What is left out, on purpose: the deploy manifest (``deployments/<stage>/
dags.json``) does not list seeded DAGs, so a later real deploy never marks
them gone, and event routes and the asset index (its empty ``d#<dag>`` row, which reads as
"no assets" when absent) are not written: seeded DAGs must have no event
triggers and no assets (:func:`seed_dags` refuses them).
tests/local/test_ui_seed.py checks that a seeded DAG reads back through the
API exactly as a deployed one does.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chalicelib.core.dag_summary import summarize
from chalicelib.deploy.apply import first_due_at, version_id
from chalicelib.deploy.asset_index import named_assets
from chalicelib.deploy.bundle_store import BundleStore
from chalicelib.deploy.deployer import DeployPlan
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import DEFAULT_TENANT, DUE_SHARD, VERSION_COUNTER


def moto_table(table_name: str) -> Any:
    """The embedded moto server's table object (same process: LocalStack's server)."""
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            if table_name in backend.tables:
                return backend.tables[table_name]
    raise LookupError(f"no moto table {table_name}")


def dag_items(
    store: DynamoStateStore,
    plan: DeployPlan,
    now: dt.datetime,
    *,
    paused_at_creation: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """(table, item) pairs a first deploy of ``plan`` writes for its DAGs, as the
    store's models serialize them; refuses what a fast seed cannot write."""
    bundle = plan.bundle
    if not plan.ok or bundle is None:
        raise ValueError(f"the plan has problems: {plan.problems}")
    version_model, dag_model = store.models.dag_version, store.models.dag
    items: list[tuple[str, dict[str, Any]]] = []
    for spec in plan.specs:
        if spec.events or named_assets(spec):
            raise ValueError(f"{spec.dag_id}: seed DAGs without event triggers or assets")
        spec_json = spec.canonical_json()
        if len(spec_json.encode()) > store.settings.large_value_bytes:
            raise ValueError(f"{spec.dag_id}: its spec is too big to seed inline")
        version = version_id(spec.content_hash, bundle.sha256)
        chosen = spec.is_paused_upon_creation
        paused = paused_at_creation if chosen is None else chosen
        due_at = first_due_at(spec, None, now)
        summary = json.dumps(summarize(spec, git_commit=None, deployed_at=now))
        row = version_model(
            spec.dag_id, version, spec=spec_json, bundle_key=bundle.key, created_at=now, vnum=1
        )
        counter = {"dag_id": {"S": spec.dag_id}, "ver": {"S": VERSION_COUNTER}, "n": {"N": "1"}}
        dag = dag_model(
            spec.dag_id,
            ver=version,
            paused=paused,
            active=True,
            due_shard=DUE_SHARD if not paused and due_at is not None else None,
            due_at=due_at,
            tn=DEFAULT_TENANT,
            summ=summary,
        )
        items.append((version_model.Meta.table_name, row.serialize()))
        items.append((version_model.Meta.table_name, counter))
        items.append((dag_model.Meta.table_name, dag.serialize()))
    return items


def seed_dags(
    store: DynamoStateStore, bundles: BundleStore, plan: DeployPlan, now: dt.datetime
) -> int:
    """Write ``plan``'s DAGs as a first deploy would, into empty moto tables; how many."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    items = dag_items(store, plan, now)
    assert plan.bundle is not None  # dag_items checked it
    dags = moto_table(store.models.dag.Meta.table_name)
    for spec in plan.specs:  # in process: a get_dag each over HTTP costs as much as the seed
        if dags.get_item(DynamoType({"S": spec.dag_id})) is not None:
            raise ValueError(f"{spec.dag_id} is deployed already: seed only new DAGs")
    bundles.put(plan.bundle)
    tables: dict[str, Any] = {}
    for table_name, attrs in items:
        if table_name not in tables:
            tables[table_name] = moto_table(table_name)
        tables[table_name].put_item(attrs)
    return len(plan.specs)
