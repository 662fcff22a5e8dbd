from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.served import Served, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("api")) as running:
        yield running
