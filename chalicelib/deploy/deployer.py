"""``deploy``: DAG files -> bundle in the bundle store, versions and DAG rows in the state store.

Two halves. :func:`plan_deploy` runs where the DAG code is (the author's
machine, CI): it imports and validates the DAG files, serializes their specs
and builds the code bundle, touching no store. :func:`~chalicelib.deploy.apply.apply_plan`
writes a plan to the stores and reads only specs, so the API can apply a
plan sent over HTTP without importing user code. :func:`deploy` does both,
for a deploy straight to the stage's stores. Either way a broken file
registers nothing: the plan carries its problems and apply writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from chalicelib.core.errors import Problem
from chalicelib.deploy.apply import (
    DagDeployment,
    DeployPlan,
    DeployReport,
    DeployStatus,
    apply_plan,
    event_routes_key,
    first_due_at,
    manifest_key,
    version_id,
)
from chalicelib.deploy.bundle import DEFAULT_ROOTS, BundleError, build_bundle
from chalicelib.deploy.bundle_store import BundleStore
from chalicelib.deploy.plugin_files import plugin_bundle_files
from chalicelib.sdk.loader import load_dags
from chalicelib.sdk.scheduler_settings import (
    SchedulerSettingError,
    deployment_settings,
    stage_settings_environment,
)
from chalicelib.sdk.source import display_path
from chalicelib.store.base import StateStore
from chalicelib.store.import_errors import remember_deploy
from chalicelib.store.models import DEFAULT_TENANT

__all__ = [
    "DagDeployment",
    "DeployPlan",
    "DeployReport",
    "DeployStatus",
    "apply_plan",
    "deploy",
    "detect_git_commit",
    "event_routes_key",
    "first_due_at",
    "manifest_key",
    "plan_deploy",
    "project_imports",
    "version_id",
]

GIT_TIMEOUT_SECONDS = 10


def plan_deploy(
    paths: Sequence[str],
    *,
    bundle_root: str,
    bundle_roots: Sequence[str] = DEFAULT_ROOTS,
    import_timeout: float | None = None,
    stage: str | None = None,
) -> DeployPlan:
    """Import and validate the DAGs under ``paths``; their specs and the bundle of
    ``bundle_root``. Every problem is in the plan; nothing is written anywhere.

    With ``stage``, the scheduler settings that stage declares in the project's
    ``.chalice/config.json`` apply while the DAG files are imported, so the
    timetables the specs record are that deployment's (sdk/scheduler_settings.py).
    """
    root = str(Path(bundle_root).resolve())
    plan = DeployPlan()
    try:
        declared = stage_settings_environment(root, stage) if stage else {}
    except SchedulerSettingError as exc:
        plan.problems.append(Problem(str(exc)))
        return plan
    with project_imports(root, bundle_roots), deployment_settings(declared):
        loaded = load_dags([str(Path(p).resolve()) for p in paths], import_timeout=import_timeout)
        plan.problems.extend(loaded.problems)
        if plan.problems:
            return plan
        try:
            plan.bundle = build_bundle(root, bundle_roots, plugin_bundle_files())
        except BundleError as exc:
            plan.problems.append(Problem(str(exc)))
            return plan
        for dag_id, dag in sorted(loaded.dags.items()):
            plan.specs.append(dag.to_spec(root, validate=False))
            plan.shown_files[dag_id] = display_path(loaded.dag_files[dag_id]) or ""
        plan.scanned_files = sorted({_relative(f, root) for f in loaded.files})
    return plan


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
    import_timeout: float | None = None,
) -> DeployReport:
    """Deploy the DAGs found under ``paths``, with the code under ``bundle_root``:
    :func:`plan_deploy` then :func:`apply_plan` (see there for the flags). The
    files that failed (or none) become the tenant's import errors.

    ``git_commit`` is recorded on new versions; pass :func:`detect_git_commit`.
    """
    plan = plan_deploy(
        paths,
        bundle_root=bundle_root,
        bundle_roots=bundle_roots,
        import_timeout=import_timeout,
        stage=stage,
    )
    report = apply_plan(
        plan,
        store=store,
        bundles=bundles,
        now=now,
        git_commit=git_commit,
        stage=stage,
        paused_at_creation=paused_at_creation,
        tenant=tenant,
    )
    remember_deploy(store, tenant or DEFAULT_TENANT, report.problems, now, bundle_root)
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


def _relative(path: str, root: str) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return path


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
