"""Fixtures of the deploy tests: a project, stores to deploy it to, clean imports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.deploy.bundle_store import LocalBundleStore
from tests.deploy.projects import Project, imports_restored, make_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


@pytest.fixture
def local_bundles(tmp_path: Path) -> LocalBundleStore:
    return LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")


@pytest.fixture(autouse=True)
def _restore_imports() -> Iterator[None]:
    with imports_restored():
        yield
