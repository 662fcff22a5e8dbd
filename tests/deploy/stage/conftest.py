"""One deployed stage for every test of this package (it takes ~40 s to build)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.projects import imports_restored
from tests.deploy.stage.deployed import Deployed, deploy_stage


@pytest.fixture(scope="package")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    # Workers load bundles, which replace the installed `operators` and `dags`
    # modules; the tests that run after these must get theirs back.
    with imports_restored():
        yield from deploy_stage(tmp_path_factory)
