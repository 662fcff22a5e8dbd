"""pynamodb models, built at runtime because table names and host come from settings.

Key design (one table per entity, short attribute names):

- dags            pk ``dag_id``; GSI ``due`` (``due_shard`` hash, ``due_at`` range) is
                  sparse: ``due_shard`` is written only for active, unpaused DAGs.
- dag-versions    pk ``dag_id``, sk ``ver`` (content hash); immutable once created.
- dag-runs        pk ``dag_id``, sk ``run_id``; GSI ``by_state`` (``st`` hash,
                  ``run_after`` range).
- task-instances  pk ``"<dag_id>#<run_id>"``, sk ``"<task_id>#<map index>"`` where the
                  index is ``-1`` for the unmapped/placeholder record (it sorts first)
                  or six zero-padded digits; GSI ``running`` (``lease`` hash, ``hb``
                  range) is sparse: ``lease`` exists only while a try is RUNNING
                  and has beaten once (its first heartbeat sets it, the write that
                  ends the try removes it), or QUEUED waiting to be dispatched
                  again (see defer_dispatch);
                  GSI ``waiting`` (``wq`` hash, ``wp`` range) holds tries waiting
                  for a slot, best priority first.
- pools           pk ``name``: slot counters, ``pool:<name>`` (configured ``slots``)
                  and ``dag:<dag_id>`` (max_active_tasks, limit passed by callers);
                  GSI ``configured`` (``kind`` hash, ``name`` range) is sparse: only
                  configured pools carry ``kind``, so the API lists them without a scan.
- api-keys        pk ``key_id``; GSI ``by_tenant`` (``tn`` hash, ``key_id`` range).
- backfills       pk ``pk``: ``bf#<id>`` per backfill (``id`` a number from the
                  ``counter`` item's atomic ADD), ``dag#<dag_id>`` guarding the DAG's one
                  active backfill; GSI ``by_dag`` (``dag_id``, ``id``) lists a DAG's
                  backfills; GSI ``active`` (``act``, ``id``) is sparse: only backfills
                  not completed carry ``act``, for the tick's safety net.
- assets          pk/sk by item kind (chalicelib/store/assets.py): assets, events,
                  the consumer index, per-DAG queues; GSIs ``listed``, ``events``,
                  ``by_asset``.
- event-log       pk ``tn`` (tenant), sk ``eid`` (microseconds since the epoch times
                  1,000 plus a random part: an integer id that sorts by time).

The API's lists read through indexes too: ``dags.by_tenant`` (``tn``, ``dag_id``),
``dag-versions.by_number`` (``dag_id``, ``vnum``), and ``dag-runs.by_dag``
(``dag_id``, ``run_after``) and ``dag-runs.by_tenant`` (``tn``, ``run_after``).
The two run indexes project what a run list shows (``RUN_LISTED``), so a page is
one Query, and leave out the counters and map tallies: a task finishing moves
those, and an update that changes no projected attribute writes nothing to an
index, so the scheduler's hot path costs no index writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
)
from pynamodb.models import Model

from chalicelib.aws.retries import pynamodb_retry_attempts
from chalicelib.core.engine import MAX_MAP_LENGTH
from chalicelib.store.assets import build_asset_model
from chalicelib.store.settings import StoreSettings

PLACEHOLDER_INDEX = -1
RUNNING_LEASE = "running"
DUE_SHARD = "due"
_INDEX_WIDTH = len(str(MAX_MAP_LENGTH))


def instance_pk(dag_id: str, run_id: str) -> str:
    return f"{dag_id}#{run_id}"


def instance_sk(task_id: str, map_index: int) -> str:
    if map_index < 0:
        return f"{task_id}#-1"
    return f"{task_id}#{map_index:0{_INDEX_WIDTH}d}"


def split_instance_sk(sk: str) -> tuple[str, int]:
    task_id, _, index = sk.rpartition("#")
    return task_id, int(index)


DEFAULT_TENANT = "default"
"""The tenant of a DAG deployed without one, and of the local stack's admin key."""

VERSION_COUNTER = "#counter"
"""Sort key of the dag-versions item that numbers a DAG's versions (1, 2, ...)."""

POOL_KIND = "pool"

RUN_COUNTER = "#count"
"""Run id of the dag-runs item that counts a DAG's runs (in no index: it has
no ``run_after`` or ``st``)."""
# a run row's attributes a run list shows, beside the table's keys (which every
# index carries): the by_dag and by_tenant indexes project them
RUN_LISTED = (
    "st", "run_type", "logical", "di_start", "di_end", "ver",
    "conf", "start", "end", "note", "tn", "bf",
)  # fmt: skip
ACTIVE_BACKFILL = "active"

WRITE_TOKEN = "wt"
"""Attribute of run and task-instance items holding the token of the last
guarded write (store.writes): a retry whose condition fails on our own earlier
write recognises it by this token."""

MAP_COUNT_KEY = "n"
"""In a run's ``maps`` entry for a mapped task: its expanded count (the other
keys are finished states, each with how many instances are in it, and the
window, MAP_WINDOW_KEY)."""

MAP_WINDOW_KEY = "w"
"""In a run's ``maps`` entry: the window a windowed map runs through
(core.map_window); the placeholder item keeps it too (``mwin``), for recounts."""


@dataclass(frozen=True)
class StoreModels:
    dag: type[Any]
    dag_version: type[Any]
    dag_run: type[Any]
    task_instance: type[Any]
    pool: type[Any]
    api_key: type[Any]
    event_log: type[Any]
    backfill: type[Any]
    asset: type[Any]
    hitl: type[Any]  # human-in-the-loop requests (store/hitl.py)

    def all(self) -> list[type[Model]]:
        return [
            self.dag,
            self.dag_version,
            self.dag_run,
            self.task_instance,
            self.pool,
            self.api_key,
            self.event_log,
            self.backfill,
            self.asset,
            self.hitl,
        ]


def build_models(settings: StoreSettings) -> StoreModels:
    """Model classes bound to the tables and endpoint ``settings`` names."""
    from chalicelib.aws.service_models import share_service_models
    from chalicelib.store.hitl import build_hitl_model  # it imports this module's keys

    share_service_models()  # each model's connection makes a botocore session

    region = settings.region
    host = settings.endpoint_url

    class DueIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "due"
            projection = KeysOnlyProjection()

        due_shard = UnicodeAttribute(hash_key=True)
        due_at = UTCDateTimeAttribute(range_key=True)

    class DagsByTenantIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_tenant"
            projection = AllProjection()

        tn = UnicodeAttribute(hash_key=True)
        dag_id = UnicodeAttribute(range_key=True)

    class DagModel(Model):
        class Meta:
            table_name = settings.dags_table

        dag_id = UnicodeAttribute(hash_key=True)
        ver = UnicodeAttribute(null=True)
        paused = BooleanAttribute(default=False)
        active = BooleanAttribute(default=True)
        due_shard = UnicodeAttribute(null=True)
        due_at = UTCDateTimeAttribute(null=True)
        tenant = UnicodeAttribute(null=True)
        li_start = UTCDateTimeAttribute(null=True)  # last automated data interval
        li_end = UTCDateTimeAttribute(null=True)
        tn = UnicodeAttribute(null=True)  # tenant or DEFAULT_TENANT: the by_tenant key
        summ = UnicodeAttribute(null=True)  # JSON of core.dag_summary, for the API's lists
        due = DueIndex()
        by_tenant = DagsByTenantIndex()

    class VersionsByNumberIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_number"
            projection = IncludeProjection(["created_at", "git_commit", "bundle_key"])

        dag_id = UnicodeAttribute(hash_key=True)
        vnum = NumberAttribute(range_key=True)

    class DagVersionModel(Model):
        class Meta:
            table_name = settings.dag_versions_table

        dag_id = UnicodeAttribute(hash_key=True)
        ver = UnicodeAttribute(range_key=True)
        spec = UnicodeAttribute(null=True)
        spec_key = UnicodeAttribute(null=True)  # S3 key when the spec is too big
        bundle_key = UnicodeAttribute(null=True)
        created_at = UTCDateTimeAttribute()
        git_commit = UnicodeAttribute(null=True)
        vnum = NumberAttribute(null=True)  # 1, 2, ... in deploy order (Airflow's version_number)
        n = NumberAttribute(null=True)  # on the VERSION_COUNTER item only
        by_number = VersionsByNumberIndex()

    class RunsByDagIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_dag"
            projection = IncludeProjection(list(RUN_LISTED))

        dag_id = UnicodeAttribute(hash_key=True)
        run_after = UTCDateTimeAttribute(range_key=True)

    class RunsByLogicalDateIndex(GlobalSecondaryIndex[Any]):
        """A DAG's runs by logical date: the previous and next runs that
        depends_on_past reads and wakes (scheduler.past). Runs without a
        logical date are not in it."""

        class Meta:
            index_name = "by_logical"
            projection = IncludeProjection(
                [a for a in RUN_LISTED if a != "logical"] + ["run_after"]
            )

        dag_id = UnicodeAttribute(hash_key=True)
        logical = UTCDateTimeAttribute(range_key=True)

    class RunsByTenantIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_tenant"
            projection = IncludeProjection([a for a in RUN_LISTED if a != "tn"])

        tn = UnicodeAttribute(hash_key=True)
        run_after = UTCDateTimeAttribute(range_key=True)

    class RunsByStateIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_state"
            projection = KeysOnlyProjection()

        st = UnicodeAttribute(hash_key=True)
        run_after = UTCDateTimeAttribute(range_key=True)

    class DagRunModel(Model):
        class Meta:
            table_name = settings.dag_runs_table

        dag_id = UnicodeAttribute(hash_key=True)
        run_id = UnicodeAttribute(range_key=True)
        st = UnicodeAttribute()
        run_type = UnicodeAttribute()
        logical = UTCDateTimeAttribute(null=True)
        di_start = UTCDateTimeAttribute(null=True)
        di_end = UTCDateTimeAttribute(null=True)
        run_after = UTCDateTimeAttribute()
        ver = UnicodeAttribute(null=True)
        conf = UnicodeAttribute(null=True)  # JSON
        start = UTCDateTimeAttribute(null=True)
        end = UTCDateTimeAttribute(null=True)
        total = NumberAttribute(default=0)
        done = NumberAttribute(default=0)
        failed = NumberAttribute(default=0)  # failed or upstream_failed leaf instances
        chk_done = NumberAttribute(null=True)  # `done` when the tick last looked
        # {mapped task: {"n": count, finished state: instances}}: beside the
        # counters, so one ADD moves both and answers with both
        maps = MapAttribute(null=True)
        # {wide join: {finished state: counted upstream tasks in it}} (core.fan_in)
        fanin: MapAttribute[str, Any] = MapAttribute(null=True)
        chk_at = UTCDateTimeAttribute(null=True)
        note = UnicodeAttribute(null=True)
        tn = UnicodeAttribute(null=True)  # the DAG's tenant (None: DEFAULT_TENANT)
        bf = NumberAttribute(null=True)  # id of the backfill that created the run
        n = NumberAttribute(null=True)  # on the RUN_COUNTER item only
        wt = UnicodeAttribute(null=True)  # WRITE_TOKEN of the last guarded write
        sq = NumberAttribute(null=True)  # counter settles applied (store.settles)
        sl = ListAttribute(null=True)  # tokens of the latest settles, oldest first
        by_state = RunsByStateIndex()
        by_dag = RunsByDagIndex()
        by_tenant = RunsByTenantIndex()
        by_logical = RunsByLogicalDateIndex()

    class RunningIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "running"
            projection = AllProjection()

        lease = UnicodeAttribute(hash_key=True)
        hb = UTCDateTimeAttribute(range_key=True)

    class WaitingIndex(GlobalSecondaryIndex[Any]):
        """Tries waiting for a slot, by counter key, best priority first (sparse)."""

        class Meta:
            index_name = "waiting"
            projection = AllProjection()

        wq = UnicodeAttribute(hash_key=True)
        wp = UnicodeAttribute(range_key=True)

    ti_attrs: dict[str, Any] = {
        "Meta": type("Meta", (), {"table_name": settings.task_instances_table}),
        "pk": UnicodeAttribute(hash_key=True),
        "sk": UnicodeAttribute(range_key=True),
        "st": UnicodeAttribute(null=True),
        "try_n": NumberAttribute(null=True),
        "queued": UTCDateTimeAttribute(null=True),
        "start": UTCDateTimeAttribute(null=True),
        "end": UTCDateTimeAttribute(null=True),
        "lease": UnicodeAttribute(null=True),
        "hb": UTCDateTimeAttribute(null=True),
        "next_try": UTCDateTimeAttribute(null=True),
        "err": UnicodeAttribute(null=True),
        "rlen": NumberAttribute(null=True),
        "rmi": UnicodeAttribute(null=True),  # rendered_map_index
        "rf": UnicodeAttribute(null=True),  # rendered_fields (JSON, at most ~8 KB)
        "skip": ListAttribute(null=True),  # skip_downstream; [] means "skip nothing"
        "skip_set": BooleanAttribute(null=True),
        "mcount": NumberAttribute(null=True),
        "mwin": NumberAttribute(null=True),  # a windowed map's window (core.map_window)
        "slt": ListAttribute(null=True),  # slot claims held ("key|amount")
        "wq": UnicodeAttribute(null=True),  # waiting for a slot of this counter
        "wp": UnicodeAttribute(null=True),
        "rb": NumberAttribute(null=True),  # tries before the last clear (fresh retries)
        "inf": NumberAttribute(null=True),  # tries ended by infrastructure failures
        "poke0": UTCDateTimeAttribute(null=True),  # a sensor try's first poke (its timeout)
        "xid": UnicodeAttribute(null=True),  # external_executor_id (ECS task ARN)
        "wt": UnicodeAttribute(null=True),  # WRITE_TOKEN of the last guarded write
        "running": RunningIndex(),
        "waiting": WaitingIndex(),
    }
    TaskInstanceModel = type("TaskInstanceModel", (Model,), ti_attrs)

    class ConfiguredPoolsIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "configured"
            projection = AllProjection()

        kind = UnicodeAttribute(hash_key=True)
        name = UnicodeAttribute(range_key=True)

    class PoolModel(Model):
        class Meta:
            table_name = settings.pools_table

        name = UnicodeAttribute(hash_key=True)  # "pool:<name>", "dagrun:<dag>#<run>", ...
        slots = NumberAttribute(null=True)  # configured pools only
        used = NumberAttribute(null=True)
        kind = UnicodeAttribute(null=True)  # POOL_KIND on configured pools only
        desc = UnicodeAttribute(null=True)
        configured = ConfiguredPoolsIndex()

    class KeysByTenantIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_tenant"
            projection = AllProjection()

        tn = UnicodeAttribute(hash_key=True)
        key_id = UnicodeAttribute(range_key=True)

    class ApiKeyModel(Model):
        class Meta:
            table_name = settings.table_name("api-keys")

        key_id = UnicodeAttribute(hash_key=True)
        digest = UnicodeAttribute()  # sha256 of the secret part; the secret is never stored
        tn = UnicodeAttribute()
        role = UnicodeAttribute()
        name = UnicodeAttribute(null=True)
        created = UTCDateTimeAttribute()
        expires = UTCDateTimeAttribute(null=True)
        revoked = UTCDateTimeAttribute(null=True)
        by_tenant = KeysByTenantIndex()

    class EventLogModel(Model):
        class Meta:
            table_name = settings.table_name("event-log")

        tn = UnicodeAttribute(hash_key=True)
        eid = NumberAttribute(range_key=True)
        when = UTCDateTimeAttribute()
        event = UnicodeAttribute()
        owner = UnicodeAttribute(null=True)
        dag_id = UnicodeAttribute(null=True)
        run_id = UnicodeAttribute(null=True)
        task_id = UnicodeAttribute(null=True)
        map_index = NumberAttribute(null=True)
        try_number = NumberAttribute(null=True)
        extra = UnicodeAttribute(null=True)

    class BackfillsByDagIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_dag"
            projection = AllProjection()

        dag_id = UnicodeAttribute(hash_key=True)
        id = NumberAttribute(range_key=True)

    class ActiveBackfillsIndex(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "active"
            projection = KeysOnlyProjection()

        act = UnicodeAttribute(hash_key=True)
        id = NumberAttribute(range_key=True)

    class BackfillModel(Model):
        class Meta:
            table_name = settings.table_name("backfills")

        pk = UnicodeAttribute(hash_key=True)
        id = NumberAttribute(null=True)
        dag_id = UnicodeAttribute(null=True)
        from_d = UTCDateTimeAttribute(null=True)
        to_d = UTCDateTimeAttribute(null=True)
        conf = UnicodeAttribute(null=True)  # JSON
        paused = BooleanAttribute(null=True)
        reproc = UnicodeAttribute(null=True)
        mar = NumberAttribute(null=True)  # the backfill's max_active_runs
        created = UTCDateTimeAttribute(null=True)
        updated = UTCDateTimeAttribute(null=True)
        completed = UTCDateTimeAttribute(null=True)
        # logical dates to create, in creation order (ISO)
        dates: ListAttribute[Any] = ListAttribute(null=True)
        cursor = NumberAttribute(null=True)  # dates[:cursor] have their runs
        act = UnicodeAttribute(null=True)  # ACTIVE_BACKFILL until completed (sparse)
        name = UnicodeAttribute(null=True)  # the DAG's display name
        n = NumberAttribute(null=True)  # the counter item's last id
        bid = NumberAttribute(null=True)  # the guard item's backfill id
        by_dag = BackfillsByDagIndex()
        active = ActiveBackfillsIndex()

    models = StoreModels(
        DagModel,
        DagVersionModel,
        DagRunModel,
        TaskInstanceModel,
        PoolModel,
        ApiKeyModel,
        EventLogModel,
        BackfillModel,
        build_asset_model(settings.table_name("assets")),
        build_hitl_model(settings.table_name("hitl")),
    )
    for model in models.all():
        model.Meta.region = region
        model.Meta.host = host
        model.Meta.max_retry_attempts = pynamodb_retry_attempts()  # the one retry policy
        model.Meta.billing_mode = "PAY_PER_REQUEST"
    return models


def create_tables(models: StoreModels) -> None:
    """Create every table that does not exist yet (tests and the local stack)."""
    for model in models.all():
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
