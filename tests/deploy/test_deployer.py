"""deploy(): all or nothing, one immutable version per (spec, code), history kept."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.spec import DagSpec
from chalicelib.deploy.bundle import sha256_of_key
from chalicelib.deploy.bundle_store import BundleStore, LocalBundleStore, S3BundleStore
from chalicelib.deploy.deployer import (
    DeployReport,
    DeployStatus,
    deploy,
    detect_git_commit,
    event_routes_key,
    manifest_key,
    version_id,
)
from chalicelib.sdk.source import display_path
from chalicelib.store.base import DagRecord, DagVersionRecord, StateStore
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.memory import InMemoryStateStore
from tests.deploy.projects import EVENTS, HELLO, NOW, Project
from tests.sdk.dagfiles import line_of

UTC = dt.UTC


class RecordingStore(InMemoryStateStore):
    """The in-memory store, remembering which versions were newly created."""

    def __init__(self) -> None:
        super().__init__()
        self.new_versions: list[tuple[str, str]] = []

    def put_dag_version(self, record: DagVersionRecord) -> bool:
        created = super().put_dag_version(record)
        if created:
            self.new_versions.append((record.dag_id, record.version))
        return created


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


def run_deploy(
    project: Project,
    store: StateStore,
    bundles: BundleStore,
    *,
    now: dt.datetime = NOW,
    paths: list[str] | None = None,
    **options: Any,
) -> DeployReport:
    return deploy(
        paths or [str(project.dags)],
        store=store,
        bundles=bundles,
        bundle_root=str(project.root),
        now=now,
        **options,
    )


def by_id(report: DeployReport) -> dict[str, Any]:
    return {d.dag_id: d for d in report.dags}


def test_first_deploy_creates_paused_dags_versions_and_bundle(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    report = run_deploy(project, store, local_bundles, git_commit="c" * 40)

    assert report.ok and report.deactivated == []
    dags = by_id(report)
    assert {d.status for d in dags.values()} == {DeployStatus.CREATED}
    hello = store.get_dag("hello")
    assert hello is not None and hello.paused and hello.active
    assert hello.current_version == dags["hello"].version
    # @daily without catchup: the latest complete interval, [03-09, 03-10), is due.
    assert hello.next_due_at == dt.datetime(2025, 3, 10, tzinfo=UTC)
    assert dags["on_demand"].next_due_at is None
    version = store.get_dag_version("hello", dags["hello"].version)
    assert version is not None and version.bundle_key is not None
    assert version.bundle_key == report.bundle_key and local_bundles.exists(version.bundle_key)
    assert version.git_commit == "c" * 40 and version.created_at == NOW
    spec = DagSpec.from_json(version.spec_json)
    assert spec.fileloc == "dags/hello.py"
    assert version.version == version_id(spec.content_hash, sha256_of_key(version.bundle_key))
    assert local_bundles.get_json(manifest_key("dev"))["dags"] == {
        "hello": "dags/hello.py",
        "on_demand": "dags/on_demand.py",
    }


def test_unpause_creates_new_dags_unpaused_but_keeps_existing_flags(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    run_deploy(project, store, local_bundles)
    project.write("dags/extra.py", HELLO.replace('"hello"', '"extra"'))

    report = run_deploy(project, store, local_bundles, paused_at_creation=False)

    assert by_id(report)["extra"].paused is False
    assert by_id(report)["hello"].paused is True
    assert store.get_dag("hello").paused is True  # type: ignore[union-attr]


def test_redeploying_unchanged_code_creates_no_version(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    first = run_deploy(project, store, local_bundles)
    store.new_versions.clear()

    again = run_deploy(project, store, local_bundles, now=NOW + dt.timedelta(minutes=5))

    assert store.new_versions == []
    assert {d.status for d in again.dags} == {DeployStatus.UNCHANGED}
    assert [d.version for d in again.dags] == [d.version for d in first.dags]
    assert not any(d.version_created for d in again.dags)
    assert again.bundle_key == first.bundle_key


def test_editing_a_callable_body_makes_a_new_version_and_keeps_the_old(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    old = by_id(run_deploy(project, store, local_bundles))["hello"]
    project.write("dags/hello.py", HELLO.replace("from v1", "from v2"))

    report = run_deploy(project, store, local_bundles)

    new = by_id(report)["hello"]
    assert new.status is DeployStatus.UPDATED and new.previous_version == old.version
    old_record = store.get_dag_version("hello", old.version)
    new_record = store.get_dag_version("hello", new.version)
    assert old_record is not None and new_record is not None
    # The structure did not change, the code did: the spec hashes agree, versions do not.
    assert DagSpec.from_json(old_record.spec_json) == DagSpec.from_json(new_record.spec_json)
    assert old_record.bundle_key != new_record.bundle_key
    # A run pinned to the old version still gets the old code.
    old_dag = local_bundles.load_dag(old_record.bundle_key or "", "dags/hello.py", "hello")
    new_dag = local_bundles.load_dag(new_record.bundle_key or "", "dags/hello.py", "hello")
    assert old_dag.task_dict["say"].python_callable() == "hello from v1"
    assert new_dag.task_dict["say"].python_callable() == "hello from v2"
    # Every DAG shares the bundle, so the other DAG gets a new version too (as in Airflow 3).
    assert by_id(report)["on_demand"].status is DeployStatus.UPDATED


def test_changing_a_task_changes_the_spec_and_the_version(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    old = by_id(run_deploy(project, store, local_bundles))["on_demand"]
    project.write(
        "dags/on_demand.py",
        (project.dags / "on_demand.py").read_text().replace('task_id="second"', 'task_id="last"'),
    )

    new = by_id(run_deploy(project, store, local_bundles))["on_demand"]

    assert new.version != old.version
    old_spec = DagSpec.from_json(store.get_dag_version("on_demand", old.version).spec_json)  # type: ignore[union-attr]
    new_spec = DagSpec.from_json(store.get_dag_version("on_demand", new.version).spec_json)  # type: ignore[union-attr]
    assert set(old_spec.tasks) == {"first", "second"}
    assert set(new_spec.tasks) == {"first", "last"}
    assert store.get_dag("on_demand").current_version == new.version  # type: ignore[union-attr]


def test_a_broken_file_writes_nothing_and_reports_every_problem(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    broken = project.write("dags/broken.py", "from chalicelib.sdk import DAG\nDAG(\n")
    failing = project.write("dags/failing.py", "x = 1\nraise RuntimeError('boom')  # here\n")

    report = run_deploy(project, store, local_bundles)

    assert not report.ok and report.dags == [] and report.bundle_key is None
    texts = [str(p) for p in report.problems]
    assert any(t.startswith(f"{display_path(str(broken))}:2: syntax error") for t in texts)
    assert any(
        t.startswith(f"{display_path(str(failing))}:{line_of(failing, '# here')}: ")
        and "RuntimeError: boom" in t
        for t in texts
    )
    assert store.get_dag("hello") is None and store.new_versions == []
    assert not (local_bundles.root_dir).exists()


def test_a_broken_redeploy_leaves_the_current_version_alone(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    before = run_deploy(project, store, local_bundles)
    project.write("dags/hello.py", HELLO.replace("from v1", "from v2"))
    project.write("dags/on_demand.py", "import missing_module\n")

    report = run_deploy(project, store, local_bundles)

    assert not report.ok
    assert store.get_dag("hello").current_version == by_id(before)["hello"].version  # type: ignore[union-attr]
    assert store.get_dag("on_demand").active  # type: ignore[union-attr]
    assert local_bundles.get_json(manifest_key("dev"))["bundle_key"] == before.bundle_key


def test_a_dag_file_outside_the_bundle_is_refused(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore, tmp_path: Path
) -> None:
    outside = tmp_path / "scratch"
    outside.mkdir()
    (outside / "stray.py").write_text(
        (project.dags / "on_demand.py").read_text().replace('"on_demand"', '"stray"')
    )

    report = run_deploy(project, store, local_bundles, paths=[str(project.dags), str(outside)])

    assert [p.dag_id for p in report.problems] == ["stray"]
    assert "not inside the bundle" in report.problems[0].message
    assert store.get_dag("hello") is None and store.new_versions == []


def test_a_removed_dag_becomes_inactive_with_its_history(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    first = by_id(run_deploy(project, store, local_bundles))
    store.upsert_dag(DagRecord("on_demand", first["on_demand"].version, paused=False))
    source = (project.dags / "on_demand.py").read_text()
    project.remove("dags/on_demand.py")

    report = run_deploy(project, store, local_bundles)

    assert report.deactivated == ["on_demand"] and set(by_id(report)) == {"hello"}
    gone = store.get_dag("on_demand")
    assert gone is not None and not gone.active
    assert gone.current_version == first["on_demand"].version
    assert store.get_dag_version("on_demand", first["on_demand"].version) is not None
    assert "on_demand" not in local_bundles.get_json(manifest_key("dev"))["dags"]
    # Deploying again does not report it twice; bringing it back reactivates it.
    assert run_deploy(project, store, local_bundles).deactivated == []
    project.write("dags/on_demand.py", source)
    back = by_id(run_deploy(project, store, local_bundles))["on_demand"]
    assert back.status is DeployStatus.REACTIVATED and back.paused is False
    assert store.get_dag("on_demand").active  # type: ignore[union-attr]


def test_deploying_one_file_does_not_deactivate_the_others(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    run_deploy(project, store, local_bundles)

    report = run_deploy(project, store, local_bundles, paths=[str(project.dags / "hello.py")])

    assert report.deactivated == [] and set(by_id(report)) == {"hello"}
    assert store.get_dag("on_demand").active  # type: ignore[union-attr]
    assert set(local_bundles.get_json(manifest_key("dev"))["dags"]) == {"hello", "on_demand"}


def test_stages_keep_separate_manifests(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    run_deploy(project, store, local_bundles, stage="dev")
    project.remove("dags/on_demand.py")

    report = run_deploy(project, InMemoryStateStore(), local_bundles, stage="prod")

    assert report.deactivated == []
    assert set(local_bundles.get_json(manifest_key("dev"))["dags"]) == {"hello", "on_demand"}


def test_a_redeploy_continues_after_the_last_scheduled_interval(
    project: Project,
    store: RecordingStore,
    local_bundles: LocalBundleStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # About Airflow 2's data intervals: the deployment setting that keeps them.
    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", "True")
    project.write("dags/hello.py", HELLO.replace("catchup=False", "catchup=True"))
    deployed = by_id(run_deploy(project, store, local_bundles))["hello"]
    # Caught up from start_date: the first interval, [01-01, 01-02), is due.
    assert deployed.next_due_at == dt.datetime(2025, 1, 2, tzinfo=UTC)
    # The scheduler then created every run up to [03-09, 03-10) and moved on.
    store.upsert_dag(
        DagRecord(
            "hello",
            deployed.version,
            paused=False,
            next_due_at=dt.datetime(2025, 3, 11, tzinfo=UTC),
            last_interval_start=dt.datetime(2025, 3, 9, tzinfo=UTC),
            last_interval_end=dt.datetime(2025, 3, 10, tzinfo=UTC),
        )
    )
    project.write(
        "dags/hello.py",
        HELLO.replace("catchup=False", "catchup=True").replace("from v1", "from v2"),
    )

    report = run_deploy(project, store, local_bundles, now=NOW + dt.timedelta(hours=1))

    hello = store.get_dag("hello")
    assert hello is not None and not hello.paused
    assert hello.current_version == by_id(report)["hello"].version != deployed.version
    assert hello.last_interval_end == dt.datetime(2025, 3, 10, tzinfo=UTC)
    assert hello.next_due_at == dt.datetime(2025, 3, 11, tzinfo=UTC)
    assert by_id(report)["hello"].next_due_at == hello.next_due_at


def test_git_commit_is_detected_in_a_checkout_and_none_elsewhere(
    project: Project, tmp_path: Path
) -> None:
    assert detect_git_commit(str(tmp_path)) is None
    assert detect_git_commit(str(tmp_path / "does-not-exist")) is None
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }  # fmt: skip
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "dags"]):
        subprocess.run(["git", *command], cwd=project.root, env=env, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, env=env, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip

    assert detect_git_commit(str(project.root)) == head


def test_no_git_on_the_path_is_no_commit(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")

    assert detect_git_commit(str(project.root)) is None


# ------------------------------------------------------------------ on moto


def test_on_aws_a_broken_file_leaves_s3_and_dynamodb_empty(
    project: Project, aws: tuple[DynamoStateStore, S3BundleStore, Any]
) -> None:
    store, bundles, (s3, models) = aws
    project.write("dags/broken.py", "def f(:\n")

    report = run_deploy(project, store, bundles, stage="deploytest")

    assert not report.ok
    assert s3.list_objects_v2(Bucket=bundles.bucket)["KeyCount"] == 0
    assert models.dag_version.count() == 0 and models.dag.count() == 0


def test_on_aws_deploy_redeploy_and_change(
    project: Project, aws: tuple[DynamoStateStore, S3BundleStore, Any], tmp_path: Path
) -> None:
    store, bundles, (s3, models) = aws

    first = run_deploy(project, store, bundles, stage="deploytest")
    again = run_deploy(project, store, bundles, stage="deploytest")
    project.write("dags/hello.py", HELLO.replace("from v1", "from v2"))
    changed = run_deploy(project, store, bundles, stage="deploytest")

    assert first.ok and again.ok and changed.ok
    assert {d.status for d in again.dags} == {DeployStatus.UNCHANGED}
    # two DAGs x two bundles, numbered 1 and 2 for each DAG
    numbers = {
        dag_id: [int(v.vnum) for v in models.dag_version.by_number.query(dag_id)]
        for dag_id in ("hello", "on_demand")
    }
    assert numbers == {"hello": [1, 2], "on_demand": [1, 2]}
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bundles.bucket)["Contents"])
    assert first.bundle_key and changed.bundle_key
    assert keys == sorted(
        [
            first.bundle_key,
            changed.bundle_key,
            manifest_key("deploytest"),
            event_routes_key("deploytest"),
        ]
    )
    record = store.get_dag_version("hello", by_id(first)["hello"].version)
    assert record is not None and record.bundle_key == first.bundle_key
    worker_side = S3BundleStore(bundles.bucket, s3, cache_dir=tmp_path / "worker-cache")
    dag = worker_side.load_dag(record.bundle_key or "", "dags/hello.py", "hello")
    assert dag.task_dict["say"].python_callable() == "hello from v1"


def test_event_routes_follow_the_dags_triggers(
    project: Project, store: RecordingStore, local_bundles: LocalBundleStore
) -> None:
    project.write(
        "dags/on_demand.py",
        """
        from chalicelib.sdk import DAG, EventPattern, S3Event
        from operators.empty import EmptyOperator

        with DAG(
            "on_demand",
            schedule=[S3Event("landing", prefix="in/"), EventPattern({"source": ["shop"]})],
        ):
            EmptyOperator(task_id="first")
        """,
    )
    assert run_deploy(project, store, local_bundles).ok
    routes = local_bundles.get_json(event_routes_key("dev"))
    assert set(routes) == {"on_demand"}  # hello is cron-only
    assert routes["on_demand"][1] == {"source": ["shop"]}
    assert routes["on_demand"][0]["detail"]["bucket"]["name"] == ["landing"]

    project.write("dags/on_demand.py", EVENTS)  # the triggers are gone again
    assert run_deploy(project, store, local_bundles).ok
    assert local_bundles.get_json(event_routes_key("dev")) == {}
