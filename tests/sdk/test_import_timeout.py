"""A DAG file that hangs at import is reported as broken after dagbag_import_timeout,
on any thread, and the files around it load as usual."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.sdk.import_timeout import DEFAULT_SECONDS, import_timeout_seconds
from chalicelib.sdk.loader import LoadResult, load_dags
from tests.sdk.dagfiles import write_dag

GOOD = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
with DAG("fine"):
    EmptyOperator(task_id="a")
"""
# Python code that never finishes: the interruption stops it.
SPINS = """
import time
from chalicelib.sdk import DAG
with DAG("spins"):
    while True:
        time.sleep(0.01)
"""
# Blocked in C (a read that never returns, here a lock): the import is abandoned.
BLOCKS = """
import import_gate
import_gate.EVENT.wait()
"""


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "import_gate.py").write_text("import threading\nEVENT = threading.Event()\n")
    yield
    module = sys.modules.pop("import_gate", None)
    if module is not None:
        module.EVENT.set()  # let the abandoned import thread finish


def load_bounded(paths: list[str], **kwargs: float) -> LoadResult:
    """load_dags on a worker thread, with a bound so that a regression fails, not hangs."""
    found: list[LoadResult] = []
    thread = threading.Thread(target=lambda: found.append(load_dags(paths, **kwargs)), daemon=True)
    thread.start()
    thread.join(60)
    assert found, "load_dags did not return: an import hung it"
    return found[0]


def test_a_file_that_spins_at_import_is_reported_and_others_load(tmp_path: Path) -> None:
    write_dag(tmp_path, "a_spins.py", SPINS)
    write_dag(tmp_path, "b_fine.py", GOOD)

    result = load_bounded([str(tmp_path)], import_timeout=0.5)

    assert sorted(result.dags) == ["fine"]
    (problem,) = result.problems
    assert problem.file is not None and problem.file.endswith("a_spins.py")
    assert problem.message == "import timed out after 0.5 s (dagbag_import_timeout)"
    assert str(tmp_path) not in sys.path  # the interrupted import cleaned up after itself


def test_a_file_blocked_in_c_at_import_is_abandoned(tmp_path: Path, gate: None) -> None:
    write_dag(tmp_path, "blocks.py", BLOCKS)
    write_dag(tmp_path, "fine.py", GOOD)

    result = load_bounded([str(tmp_path)], import_timeout=0.5)

    assert sorted(result.dags) == ["fine"]
    assert [p.message for p in result.problems] == [
        "import timed out after 0.5 s (dagbag_import_timeout)"
    ]


def test_the_timeout_comes_from_the_airflow_or_slipstream_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SLIPSTREAM_DAGBAG_IMPORT_TIMEOUT", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", raising=False)
    assert import_timeout_seconds() == DEFAULT_SECONDS == 30.0
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "12")
    assert import_timeout_seconds() == 12.0
    monkeypatch.setenv("SLIPSTREAM_DAGBAG_IMPORT_TIMEOUT", "5")
    assert import_timeout_seconds() == 5.0
    assert import_timeout_seconds(2.5) == 2.5  # a command's flag wins
    assert import_timeout_seconds(0) is None  # 0 (or less): no limit, as in Airflow


def test_errors_and_dags_still_come_back_from_the_import_thread(tmp_path: Path) -> None:
    write_dag(tmp_path, "raises.py", "raise RuntimeError('no config')\n")
    write_dag(tmp_path, "fine.py", GOOD)

    result = load_dags([str(tmp_path)], import_timeout=30)

    assert sorted(result.dags) == ["fine"]
    (problem,) = result.problems
    assert problem.message == "error while importing: RuntimeError: no config"
    assert problem.line == 1
