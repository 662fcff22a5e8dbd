"""Deploying DAG code: the content-addressed bundle, where it is stored, and ``deploy``."""

from chalicelib.deploy.bundle import Bundle, BundleError, build_bundle, bundle_key
from chalicelib.deploy.bundle_store import BundleStore, LocalBundleStore, S3BundleStore
from chalicelib.deploy.deployer import (
    DagDeployment,
    DeployReport,
    DeployStatus,
    deploy,
    detect_git_commit,
    manifest_key,
    version_id,
)

__all__ = [
    "Bundle",
    "BundleError",
    "BundleStore",
    "DagDeployment",
    "DeployReport",
    "DeployStatus",
    "LocalBundleStore",
    "S3BundleStore",
    "build_bundle",
    "bundle_key",
    "deploy",
    "detect_git_commit",
    "manifest_key",
    "version_id",
]
