"""Fixtures every test package may use; package-specific ones live beside their tests."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import botocore.session  # type: ignore[import-untyped]
import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parent.parent

# The product has no default region (a stage runs where AWS_REGION says); the
# tests' moto account lives in us-east-1, set before any module-scoped fixture.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# Property tests must give the same verdict on every run and every machine:
# derandomize fixes the examples, and no deadline because CI shares 2 cores.
settings.register_profile("slipstream", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "slipstream"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each test module on one xdist worker (``--dist loadgroup``): many
    modules share a module-scoped stack whose tests build on each other's runs.
    A module that names its own group (the browser tests) keeps it."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any AWS call that escapes moto fail on fake credentials instead of reaching
    a real account with the developer's."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """Let every botocore session in the test process share one data loader.

    pynamodb opens a new botocore session per model connection, and each
    session's loader parses the service JSON (DynamoDB, endpoints, partitions)
    again: ~2 CPU seconds of the ~2.5 a DynamoDB store's ten tables cost to
    create, paid by every test on the ``dynamodb`` store. The loader's cached
    models are read-only (one boto3 session already shares them between all
    its clients), so sharing them across sessions changes no answer."""
    original = botocore.session.create_loader
    botocore.session.create_loader = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        botocore.session.create_loader = original


@pytest.fixture(autouse=True, scope="session")
def _faithful_moto_transactions():
    """DynamoDB transactions on moto are serializable and cost O(items touched),
    and items serialize without moto's shape walk, as on the local stack; see
    chalicelib/local/moto_fidelity.py and moto_speed.py."""
    from chalicelib.local.moto_fidelity import faithful_transactions
    from chalicelib.local.moto_speed import fast_item_serialization

    with faithful_transactions(), fast_item_serialization():
        yield
