"""The store side of a deploy: specs + bundle -> versions, DAG rows, manifest, event routes.

It reads only serialized specs and the bundle's bytes, never DAG code, so the
API can run it for a deploy sent over HTTP (principle 1: the control plane
never runs user code). What builds a :class:`DeployPlan` from DAG files is
``deployer.plan_deploy``, on the author's machine.

The writes go in an order where a crash at any point leaves nothing visible
half-done, and running the deploy again finishes the job:

    bundle (content-addressed) -> versions (immutable, unreferenced until ...)
    -> DAG rows (switch current_version) -> manifest (which DAGs are deployed)

Version ids. The spec hash covers a DAG's structure; the bundle hash covers
the code its tasks run. Editing a callable's body changes the bundle but not
the spec, and a run must still find the code it started with, so a version
is named by both: ``sha256("<spec hash>:<bundle sha256>")``. As in Airflow 3
(a new DAG version when the serialized DAG or the bundle version changes),
a DAG gets a new version when any file of the bundle changes, because we
cannot tell which files a DAG's tasks import.

Which DAGs disappeared. The state store has no "list DAGs", so a manifest
``deployments/<stage>/dags.json`` in the bundle store lists the DAGs the
last deploy left active with their files. A listed DAG is marked inactive
(its versions and runs kept) when its file was among the files loaded, or
is no longer in the bundle, and it was not found this time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from chalicelib.core.dag_summary import summarize
from chalicelib.core.data_intervals import DataInterval, TimeRestriction
from chalicelib.core.errors import Problem, ScheduleError, SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.deploy.asset_index import asset_store_of, index_assets
from chalicelib.deploy.bundle import DEFAULT_ROOTS, Bundle
from chalicelib.deploy.bundle_store import BundleStore
from chalicelib.deploy.task_roles import task_role_problems
from chalicelib.store.base import DagRecord, DagVersionRecord, StateStore

MANIFEST_FORMAT = 1


class DeployStatus(str, Enum):
    CREATED = "created"  # first deploy of this DAG id
    UPDATED = "updated"  # a new current version
    REACTIVATED = "reactivated"  # it had disappeared and is back
    UNCHANGED = "unchanged"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DagDeployment:
    dag_id: str
    status: DeployStatus
    version: str
    previous_version: str | None
    version_created: bool  # False when an identical version was already stored
    fileloc: str
    paused: bool
    next_due_at: dt.datetime | None
    tasks: int


@dataclass
class DeployReport:
    dags: list[DagDeployment] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    bundle_key: str | None = None
    bundle_files: int = 0
    git_commit: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class DeployPlan:
    """What a deploy ships, decided without the store: the specs, the bundle, and
    which DAG files were read (paths relative to the bundle root), so a DAG the
    last deploy had in one of them and that is gone now is deactivated.

    ``shown_files`` is how problems name each DAG's file to the author (the
    path they typed); without it, the spec's ``fileloc``.
    """

    specs: list[DagSpec] = field(default_factory=list)
    bundle: Bundle | None = None
    scanned_files: list[str] = field(default_factory=list)
    shown_files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.bundle is not None


@dataclass(frozen=True)
class _Planned:
    spec: DagSpec
    version: str
    previous: DagRecord | None
    record: DagRecord
    status: DeployStatus


def version_id(spec_hash: str, bundle_sha256: str) -> str:
    """The id of the DAG version made of this spec and this code."""
    return hashlib.sha256(f"{spec_hash}:{bundle_sha256}".encode()).hexdigest()


def manifest_key(stage: str, tenant: str | None = None) -> str:
    """Which DAGs the last deploy of a tenant's bundle holds: a DAG missing from
    the next deploy of the same tenant is deactivated; other tenants' are not."""
    if tenant is None:
        return f"deployments/{stage}/dags.json"
    return f"deployments/{stage}/tenants/{tenant}/dags.json"


def event_routes_key(stage: str) -> str:
    """Which event patterns start which DAG: read by the scheduler's event router."""
    return f"deployments/{stage}/event-routes.json"


def apply_plan(
    plan: DeployPlan,
    *,
    store: StateStore,
    bundles: BundleStore,
    now: dt.datetime,
    git_commit: str | None = None,
    stage: str = "dev",
    paused_at_creation: bool = True,
    tenant: str | None = None,
) -> DeployReport:
    """Write a plan's versions and DAG rows; nothing at all when any DAG has a problem.

    ``paused_at_creation`` matches Airflow's ``dags_are_paused_at_creation``:
    new DAGs start paused; DAGs deployed before keep their paused flag.
    ``tenant`` owns the DAGs this deploy creates; a DAG another tenant owns is
    refused (nothing is written), so one tenant cannot take over another's DAG.
    """
    report = DeployReport(git_commit=git_commit, problems=list(plan.problems))
    bundle = plan.bundle
    if report.problems or bundle is None:
        return report
    key = manifest_key(stage, tenant)
    previous_manifest = _read_manifest(bundles.get_json(key), key)
    planned = _decide(
        plan, bundle, store, now, paused_at_creation, report.problems, git_commit, tenant, stage
    )
    found = {spec.dag_id for spec in plan.specs}
    gone = _disappeared(previous_manifest, found, set(plan.scanned_files), set(bundle.files))
    if report.problems:
        return report

    report.bundle_key, report.bundle_files = bundle.key, len(bundle.files)
    bundles.put(bundle)
    for item in planned:
        # The current version's record exists: rows switch only after versions are written.
        current = item.previous is not None and item.previous.current_version == item.version
        created = not current and store.put_dag_version(
            DagVersionRecord(
                dag_id=item.spec.dag_id,
                version=item.version,
                spec_json=item.spec.canonical_json(),
                created_at=now,
                bundle_key=bundle.key,
                git_commit=git_commit,
            )
        )
        if item.record != item.previous:
            store.upsert_dag(item.record)
        report.dags.append(_deployment(item, created))
    for dag_id in gone:
        record = store.get_dag(dag_id)
        if record is not None and record.active:
            store.upsert_dag(replace(record, active=False))
            report.deactivated.append(dag_id)
    kept = {d: f for d, f in previous_manifest.items() if d not in gone}
    kept.update({p.spec.dag_id: p.spec.fileloc or "" for p in planned})
    bundles.put_json(key, _manifest(kept, bundle, git_commit, now))
    routes = dict(bundles.get_json(event_routes_key(stage)) or {})
    for dag_id in gone:
        routes.pop(dag_id, None)
    for item in planned:
        patterns = [trigger.event_pattern() for trigger in item.spec.events]
        if patterns:
            routes[item.spec.dag_id] = patterns
        else:
            routes.pop(item.spec.dag_id, None)
    bundles.put_json(event_routes_key(stage), routes)
    assets = asset_store_of(store)
    if assets is not None:
        index_assets(assets, [item.spec for item in planned], gone, now)
    return report


def _decide(
    plan: DeployPlan,
    bundle: Bundle,
    store: StateStore,
    now: dt.datetime,
    paused_at_creation: bool,
    problems: list[Problem],
    git_commit: str | None,
    tenant: str | None,
    stage: str,
) -> list[_Planned]:
    in_bundle = set(bundle.files)
    planned: list[_Planned] = []
    for spec in sorted(plan.specs, key=lambda s: s.dag_id):
        dag_id = spec.dag_id
        file, line = plan.shown_files.get(dag_id) or spec.fileloc, spec.line
        if spec.fileloc not in in_bundle:
            folders = ", ".join(f"{r}/" for r in DEFAULT_ROOTS)
            problems.append(
                Problem(
                    f"the DAG file is not inside the bundle ({folders} of the project): "
                    "workers could not import it",
                    file=file,
                    line=line,
                    dag_id=dag_id,
                )
            )
            continue
        previous = store.get_dag(dag_id)
        if previous is not None and (previous.tenant or None) != (tenant or None):
            problems.append(
                Problem(
                    f"DAG {dag_id!r} is deployed by another tenant; choose another dag_id",
                    file=file,
                    line=line,
                    dag_id=dag_id,
                )
            )
            continue
        roles = task_role_problems(spec, file, stage=stage, tenant=tenant)
        if roles:
            problems.extend(roles)
            continue
        try:
            next_due = first_due_at(spec, previous, now)
        except ScheduleError as exc:
            problems.append(Problem(f"schedule: {exc}", file=file, line=line, dag_id=dag_id))
            continue
        version = version_id(spec.content_hash, bundle.sha256)
        summary = json.dumps(summarize(spec, git_commit=git_commit, deployed_at=now))
        planned.append(
            _planned(spec, version, previous, next_due, paused_at_creation, summary, tenant)
        )
    return planned


def _planned(
    spec: DagSpec,
    version: str,
    previous: DagRecord | None,
    next_due: dt.datetime | None,
    paused_at_creation: bool,
    summary: str,
    tenant: str | None,
) -> _Planned:
    if previous is None:
        # The DAG's own is_paused_upon_creation wins over the deploy's default, as it
        # wins over Airflow's dags_are_paused_at_creation; it applies only at creation.
        paused = spec.is_paused_upon_creation
        record = DagRecord(
            dag_id=spec.dag_id,
            current_version=version,
            paused=paused_at_creation if paused is None else paused,
            next_due_at=next_due,
            tenant=tenant,
            summary=summary,
        )
        return _Planned(spec, version, None, record, DeployStatus.CREATED)
    if previous.current_version == version and previous.summary:
        summary = previous.summary  # the same version keeps the deploy time it was made at
    record = replace(
        previous, current_version=version, active=True, next_due_at=next_due, summary=summary
    )
    if not previous.active:
        status = DeployStatus.REACTIVATED
    elif previous.current_version != version:
        status = DeployStatus.UPDATED
    else:
        status = DeployStatus.UNCHANGED
    return _Planned(spec, version, previous, record, status)


def first_due_at(spec: DagSpec, previous: DagRecord | None, now: dt.datetime) -> dt.datetime | None:
    """When the scheduler should next look at this DAG, from its last scheduled interval.

    A redeploy continues after the last interval the scheduler created (the
    schedule may have changed), so no run is skipped or made twice.
    """
    last: DataInterval | None = None
    if previous is not None and previous.last_interval_start and previous.last_interval_end:
        last = DataInterval(previous.last_interval_start, previous.last_interval_end)
    info = spec.timetable.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(
            earliest=spec.start_date, latest=spec.end_date, catchup=spec.catchup
        ),
        now=now,
    )
    return None if info is None else info.run_after


def _disappeared(
    manifest: dict[str, str], found: set[str], scanned: set[str], in_bundle: set[str]
) -> list[str]:
    return sorted(
        dag_id
        for dag_id, fileloc in manifest.items()
        if dag_id not in found and (fileloc in scanned or fileloc not in in_bundle)
    )


def _read_manifest(document: Any, key: str) -> dict[str, str]:
    if document is None:
        return {}
    if not isinstance(document, dict) or not isinstance(document.get("dags"), dict):
        raise SlipstreamError(f"deploy manifest {key} is not a Slipstream manifest")
    return {str(k): str(v) for k, v in document["dags"].items()}


def _manifest(
    dags: dict[str, str], bundle: Bundle, git_commit: str | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "dags": dict(sorted(dags.items())),
        "bundle_key": bundle.key,
        "git_commit": git_commit,
        "deployed_at": now.isoformat(),
    }


def _deployment(plan: _Planned, version_created: bool) -> DagDeployment:
    return DagDeployment(
        dag_id=plan.spec.dag_id,
        status=plan.status,
        version=plan.version,
        previous_version=plan.previous.current_version if plan.previous else None,
        version_created=version_created,
        fileloc=plan.spec.fileloc or "",
        paused=plan.record.paused,
        next_due_at=plan.record.next_due_at,
        tasks=len(plan.spec.tasks),
    )
