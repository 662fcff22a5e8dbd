"""The bundle is a pure function of the files: same files, same bytes, same key, anywhere."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.deploy.bundle import BundleError, build_bundle, bundle_key, sha256_of_key
from tests.deploy.projects import REPO_ROOT, Project


def test_the_same_files_give_the_same_bytes_and_key(project: Project, tmp_path: Path) -> None:
    first = build_bundle(project.root)
    copy = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(project.root, copy)
    # Another checkout: other mtimes, other permissions, other absolute path.
    for path in copy.rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        path.chmod(0o755)

    second = build_bundle(copy)

    assert second.data == first.data
    assert second.sha256 == first.sha256
    assert first.key == f"bundles/{first.sha256}.zip"


def test_a_fresh_interpreter_builds_the_same_bundle(project: Project) -> None:
    script = (
        "import sys; from chalicelib.deploy.bundle import build_bundle; "
        "print(build_bundle(sys.argv[1]).sha256)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(project.root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123", "TZ": "Asia/Tokyo"},
    )

    assert completed.stdout.strip() == build_bundle(project.root).sha256


def test_entries_are_sorted_with_fixed_time_and_mode(project: Project) -> None:
    bundle = build_bundle(project.root)

    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names) == list(bundle.files)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}


def test_only_dags_and_operators_without_caches_or_dotfiles(project: Project) -> None:
    project.write("dags/__pycache__/hello.cpython-311.pyc", "junk")
    project.write("dags/stale.pyc", "junk")
    project.write("dags/.hello.py.swp", "junk")
    project.write("dags/.secret/key.py", "junk")
    project.write("dags/sql/report.sql", "select 1")
    project.write("notebooks/scratch.py", "junk")
    project.write("README.md", "junk")

    files = build_bundle(project.root).files

    assert "dags/sql/report.sql" in files and "dags/hello.py" in files
    assert "operators/greeting.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if any(part.startswith(".") for part in f.split("/"))]
    assert not [f for f in files if not f.startswith(("dags/", "operators/"))]


def test_a_changed_byte_changes_the_key(project: Project) -> None:
    before = build_bundle(project.root)
    project.write("operators/greeting.py", 'def greeting() -> str:\n    return "hellO"\n')

    assert build_bundle(project.root).key != before.key


def test_roots_are_configurable_and_missing_ones_skipped(project: Project) -> None:
    bundle = build_bundle(project.root, roots=("dags", "plugins"))

    assert bundle.files and all(f.startswith("dags/") for f in bundle.files)


def test_bundle_keys_are_checked() -> None:
    digest = "ab" * 32
    assert sha256_of_key(bundle_key(digest)) == digest
    for bad in ("bundles/abc.zip", f"other/{digest}.zip", f"bundles/{digest}.tar", "x"):
        with pytest.raises(BundleError, match="not a bundle key"):
            sha256_of_key(bad)
