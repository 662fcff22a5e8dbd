"""Fixtures of the deploy tests: a project, stores to deploy it to, clean imports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from chalicelib.deploy.bundle_store import LocalBundleStore, S3BundleStore
from chalicelib.store.dynamodb import DynamoStateStore
from chalicelib.store.models import build_models, create_tables
from chalicelib.store.settings import StoreSettings
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


@pytest.fixture
def aws() -> Iterator[tuple[DynamoStateStore, S3BundleStore, Any]]:
    """The stores on moto: (state store, S3 bundle store, (s3 client, table models))."""
    settings = StoreSettings(stage="deploytest", bucket="slipstream-deploy-test")
    with mock_aws():
        models = build_models(settings)
        create_tables(models)
        s3 = boto3.client("s3", region_name=settings.region)
        s3.create_bucket(Bucket=settings.bucket)
        store = DynamoStateStore(settings, models=models, s3_client=s3)
        yield store, S3BundleStore(settings.bucket, s3), (s3, models)
