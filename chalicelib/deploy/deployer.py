"""``deploy``: DAG files -> bundle in the bundle store, versions and DAG rows in the state store.

It decides everything first (import, validate, serialize, hash, next due
times) and writes only when every DAG file is sound, so a broken file
registers nothing. The writes then go in an order where a crash at any
point leaves nothing visible half-done, and running the deploy again
finishes the job:

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

import contextlib
import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from chalicelib.core.dag_summary import summarize
from chalicelib.core.errors import Problem, ScheduleError, SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.core.timetables import DataInterval, TimeRestriction
from chalicelib.deploy.bundle import DEFAULT_ROOTS, Bundle, BundleError, build_bundle
from chalicelib.deploy.bundle_store import BundleStore
from chalicelib.sdk.loader import LoadResult, load_dags
from chalicelib.sdk.source import display_path
from chalicelib.store.base import DagRecord, DagVersionRecord, StateStore

MANIFEST_FORMAT = 1
GIT_TIMEOUT_SECONDS = 10


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


def deploy(
    paths: Sequence[str],
    *,
    store: StateStore,
    bundles: BundleStore,
    bundle_root: str,
    now: dt.datetime,
    git_commit: str | None = None,
    stage: str = "dev",
    paused_at_creation: bool = True,
    bundle_roots: Sequence[str] = DEFAULT_ROOTS,
    tenant: str | None = None,
) -> DeployReport:
    """Deploy the DAGs found under ``paths``, with the code under ``bundle_root``.

    ``paused_at_creation`` matches Airflow's ``dags_are_paused_at_creation``:
    new DAGs start paused; DAGs deployed before keep their paused flag.
    ``git_commit`` is recorded on new versions; pass :func:`detect_git_commit`.
    ``tenant`` owns the DAGs this deploy creates; a DAG another tenant owns is
    refused (nothing is written), so one tenant cannot take over another's DAG.
    """
    root = str(Path(bundle_root).resolve())
    report = DeployReport(git_commit=git_commit)
    key = manifest_key(stage, tenant)
    with project_imports(root, bundle_roots):
        loaded = load_dags([str(Path(p).resolve()) for p in paths])
        report.problems.extend(loaded.problems)
        if report.problems:
            return report
        try:
            bundle = build_bundle(root, bundle_roots)
        except BundleError as exc:
            report.problems.append(Problem(str(exc)))
            return report
        previous_manifest = _read_manifest(bundles.get_json(key), key)
        planned = _plan(
            loaded,
            bundle,
            root,
            store,
            now,
            paused_at_creation,
            report.problems,
            git_commit=git_commit,
            tenant=tenant,
        )
        gone = _disappeared(previous_manifest, loaded, bundle, root)
    if report.problems:
        return report

    report.bundle_key, report.bundle_files = bundle.key, len(bundle.files)
    bundles.put(bundle)
    for plan in planned:
        # The current version's record exists: rows switch only after versions are written.
        current = plan.previous is not None and plan.previous.current_version == plan.version
        created = not current and store.put_dag_version(
            DagVersionRecord(
                dag_id=plan.spec.dag_id,
                version=plan.version,
                spec_json=plan.spec.canonical_json(),
                created_at=now,
                bundle_key=bundle.key,
                git_commit=git_commit,
            )
        )
        if plan.record != plan.previous:
            store.upsert_dag(plan.record)
        report.dags.append(_deployment(plan, created))
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
    for plan in planned:
        patterns = [trigger.event_pattern() for trigger in plan.spec.events]
        if patterns:
            routes[plan.spec.dag_id] = patterns
        else:
            routes.pop(plan.spec.dag_id, None)
    bundles.put_json(event_routes_key(stage), routes)
    return report


@contextlib.contextmanager
def project_imports(root: str, bundle_roots: Sequence[str]) -> Iterator[None]:
    """Import DAG files as a worker will: the project's ``operators`` and ``dags``
    packages (not the ones this process may hold) with the project root first on
    ``sys.path``. The caller's modules and path are restored afterwards; the DAG
    objects keep the project modules they were built with.
    """
    provided = {name for name in bundle_roots if Path(root, name).is_dir()}
    saved_path = list(sys.path)
    # Copies of sys.modules: another thread (a local stack's API or scheduler)
    # may import while this runs, and a dict must not change under iteration.
    shadowed = {
        name: module
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in provided
    }
    for name in shadowed:
        sys.modules.pop(name, None)
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in [n for n in list(sys.modules) if n.partition(".")[0] in provided]:
            sys.modules.pop(name, None)
        sys.modules.update(shadowed)


def _plan(
    loaded: LoadResult,
    bundle: Bundle,
    root: str,
    store: StateStore,
    now: dt.datetime,
    paused_at_creation: bool,
    problems: list[Problem],
    *,
    git_commit: str | None,
    tenant: str | None,
) -> list[_Planned]:
    in_bundle = set(bundle.files)
    planned: list[_Planned] = []
    for dag_id, dag in sorted(loaded.dags.items()):
        spec = dag.to_spec(root, validate=False)
        file = display_path(loaded.dag_files[dag_id])
        if spec.fileloc not in in_bundle:
            folders = ", ".join(f"{r}/" for r in DEFAULT_ROOTS)
            problems.append(
                Problem(
                    f"the DAG file is not inside the bundle ({folders} of {root}): "
                    "workers could not import it",
                    file=file,
                    line=dag.line,
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
                    line=dag.line,
                    dag_id=dag_id,
                )
            )
            continue
        try:
            next_due = first_due_at(spec, previous, now)
        except ScheduleError as exc:
            problems.append(Problem(f"schedule: {exc}", file=file, line=dag.line, dag_id=dag_id))
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
        record = DagRecord(
            dag_id=spec.dag_id,
            current_version=version,
            paused=paused_at_creation,
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
    manifest: dict[str, str],
    loaded: LoadResult,
    bundle: Bundle,
    root: str,
) -> list[str]:
    found = set(loaded.dags)
    scanned = {_relative(f, root) for f in loaded.files}
    in_bundle = set(bundle.files)
    return sorted(
        dag_id
        for dag_id, fileloc in manifest.items()
        if dag_id not in found and (fileloc in scanned or fileloc not in in_bundle)
    )


def _relative(path: str, root: str) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return path


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


def detect_git_commit(folder: str) -> str | None:
    """``git rev-parse HEAD`` in ``folder``; None when it is no checkout or git is missing."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    if completed.returncode != 0 or len(commit) < 40:
        return None
    return commit
