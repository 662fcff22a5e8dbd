"""Bundles stored once, extracted once per process, imported once per (bundle, file)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from chalicelib.core.errors import DagValidationError, SlipstreamError
from chalicelib.deploy.bundle import Bundle, BundleError, build_bundle
from chalicelib.deploy.bundle_store import PARTIAL_PREFIX, LocalBundleStore, S3BundleStore
from tests.deploy.projects import Project

BUCKET = "slipstream-test-bundles"


class CountingS3:
    """A boto3 S3 client that counts the calls made through it."""

    def __init__(self, client: Any):
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "exceptions" or not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return counted


@pytest.fixture
def s3() -> Iterator[CountingS3]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield CountingS3(client)


def say(dag: Any) -> str:
    result: str = dag.task_dict["say"].python_callable()
    return result


def test_put_uploads_once_and_load_round_trips(
    project: Project, s3: CountingS3, tmp_path: Path
) -> None:
    bundles = S3BundleStore(BUCKET, s3, cache_dir=tmp_path / "cache")
    bundle = build_bundle(project.root)

    assert bundles.put(bundle) == bundle.key
    assert bundles.put(bundle) == bundle.key

    assert s3.calls.count("put_object") == 1
    assert s3.calls.count("head_object") == 2
    root = bundles.load(bundle.key)
    assert root == (tmp_path / "cache" / bundle.sha256).resolve()
    assert (root / "dags" / "hello.py").read_bytes() == (project.dags / "hello.py").read_bytes()


def test_a_warm_process_downloads_and_imports_once(
    project: Project, s3: CountingS3, tmp_path: Path
) -> None:
    bundle = build_bundle(project.root)
    S3BundleStore(BUCKET, s3).put(bundle)
    s3.calls.clear()

    first = S3BundleStore(BUCKET, s3, cache_dir=tmp_path / "cache")
    dag = first.load_dag(bundle.key, "dags/hello.py", "hello")
    # A new store object (another handler of the same container) shares the cache.
    again = S3BundleStore(BUCKET, s3, cache_dir=tmp_path / "cache")

    assert again.load_dag(bundle.key, "dags/hello.py", "hello") is dag
    assert s3.calls == ["get_object"]
    assert say(dag) == "hello from v1"
    assert str(tmp_path / "cache") in str(dag.fileloc)


def test_each_bundle_imports_its_own_code(project: Project, tmp_path: Path) -> None:
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    old = build_bundle(project.root)
    bundles.put(old)
    project.write("operators/greeting.py", 'def greeting() -> str:\n    return "bonjour"\n')
    new = build_bundle(project.root)
    bundles.put(new)

    old_dag = bundles.load_dag(old.key, "dags/hello.py", "hello")
    new_dag = bundles.load_dag(new.key, "dags/hello.py", "hello")

    assert say(old_dag) == "hello from v1"
    assert say(new_dag) == "bonjour from v1"
    assert bundles.load_dag(old.key, "dags/hello.py", "hello") is old_dag


def test_a_half_extracted_folder_is_never_used(project: Project, tmp_path: Path) -> None:
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundle = build_bundle(project.root)
    bundles.put(bundle)
    leftover = tmp_path / "cache" / f"{PARTIAL_PREFIX}{bundle.sha256}-dead"
    (leftover / "dags").mkdir(parents=True)
    (leftover / "dags" / "hello.py").write_text("raise SystemExit('half a file')")

    dag = bundles.load_dag(bundle.key, "dags/hello.py", "hello")

    assert say(dag) == "hello from v1"
    assert not str(dag.fileloc).startswith(str(leftover))


def test_a_crash_during_extraction_leaves_nothing_that_looks_ready(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundle = build_bundle(project.root)
    bundles.put(bundle)
    real_extractall = zipfile.ZipFile.extractall

    def crash_after_one_file(self: zipfile.ZipFile, path: Any = None, members: Any = None) -> None:
        real_extractall(self, path, members=list(members or self.infolist())[:1])
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", crash_after_one_file)
    with pytest.raises(OSError, match="disk full"):
        bundles.load(bundle.key)
    assert list((tmp_path / "cache").iterdir()) == []

    monkeypatch.undo()
    root = bundles.load(bundle.key)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == list(
        bundle.files
    )


def test_a_bundle_whose_bytes_do_not_match_its_key_is_refused(
    project: Project, tmp_path: Path
) -> None:
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundle = build_bundle(project.root)
    forged = Bundle(data=bundle.data + b"tampered", sha256=bundle.sha256, files=bundle.files)
    bundles.put(forged)

    with pytest.raises(BundleError, match="corrupt"):
        bundles.load(bundle.key)
    assert not (tmp_path / "cache" / bundle.sha256).exists()


def test_missing_bundle_file_or_dag_say_what_is_missing(project: Project, tmp_path: Path) -> None:
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundle = build_bundle(project.root)

    with pytest.raises(BundleError, match=f"no bundle {bundle.key}"):
        bundles.load(bundle.key)
    bundles.put(bundle)
    with pytest.raises(BundleError, match=re.escape("no DAG file 'dags/gone.py'")):
        bundles.load_dag(bundle.key, "dags/gone.py", "hello")
    with pytest.raises(BundleError, match="no DAG file"):
        bundles.load_dag(bundle.key, "../../etc/passwd", "hello")
    with pytest.raises(
        SlipstreamError, match=re.escape("no DAG 'nope' in dags/hello.py; found: hello")
    ):
        bundles.load_dag(bundle.key, "dags/hello.py", "nope")


def test_a_file_that_fails_to_import_raises_with_its_location(
    project: Project, tmp_path: Path
) -> None:
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    project.write("dags/broken.py", "import nowhere_to_be_found\n")
    bundle = build_bundle(project.root)
    bundles.put(bundle)

    with pytest.raises(DagValidationError) as raised:
        bundles.load_dag(bundle.key, "dags/broken.py", "broken")
    assert "broken.py:1" in str(raised.value)
    assert "nowhere_to_be_found" in str(raised.value)


def test_s3_store_reads_and_writes_json_documents(s3: CountingS3, tmp_path: Path) -> None:
    bundles = S3BundleStore(BUCKET, s3, cache_dir=tmp_path / "cache")

    assert bundles.get_json("deployments/dev/dags.json") is None
    bundles.put_json("deployments/dev/dags.json", {"dags": {"a": "dags/a.py"}})
    assert bundles.get_json("deployments/dev/dags.json") == {"dags": {"a": "dags/a.py"}}


def test_a_worker_loads_an_airflow_dag_file_from_its_bundle(
    project: Project, tmp_path: Path
) -> None:
    """The worker's path: an unchanged Airflow file in a bundle, its airflow imports resolved."""
    project.write(
        "dags/legacy.py",
        """
        from airflow import DAG
        from airflow.operators.python import PythonOperator

        def which():
            from airflow.models import Variable  # at run time, as Airflow files do
            return Variable.__module__

        with DAG("legacy", schedule=None):
            PythonOperator(task_id="which", python_callable=which)
        """,
    )
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundle = build_bundle(project.root)
    bundles.put(bundle)

    dag = bundles.load_dag(bundle.key, "dags/legacy.py", "legacy")

    assert type(dag).__module__ == "chalicelib.sdk.dag"
    assert dag.task_dict["which"].python_callable() == "chalicelib.sdk.variables"
    with pytest.raises(ModuleNotFoundError):
        import airflow  # noqa: F401
