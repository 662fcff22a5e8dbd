from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import chalicelib.cli.validate  # noqa: F401  (registers the command)
from chalicelib.cli.main import app
from tests.sdk.dagfiles import line_of, write_dag

GOOD = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
with DAG("good"):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b
"""

BAD = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
with DAG("bad"):
    a = EmptyOperator(task_id="a")  # cycle starts here
    b = EmptyOperator(task_id="b", executor="gpu")  # bad executor
    a >> b >> a
"""

runner = CliRunner()


def test_valid_files_exit_zero_and_list_dags_with_hashes(tmp_path: Path) -> None:
    write_dag(tmp_path, "good.py", GOOD)

    result = runner.invoke(app, ["dags", "validate", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "good" in result.output and "OK" in result.output
    assert "1 DAG in 1 file, all valid" in result.output


def test_problems_are_printed_located_and_exit_one(tmp_path: Path) -> None:
    good = write_dag(tmp_path, "good.py", GOOD)
    bad = write_dag(tmp_path, "bad.py", BAD)
    write_dag(tmp_path, "broken.py", "def f(:\n")

    result = runner.invoke(
        app, ["dags", "validate", str(good), str(bad), str(tmp_path / "broken.py")]
    )

    assert result.exit_code == 1
    assert (
        f"bad.py:{line_of(bad, '# bad executor')}: DAG 'bad' task 'b': unknown executor 'gpu'"
        in (result.output)
    )
    assert f"bad.py:{line_of(bad, '# cycle starts')}: DAG 'bad' task 'a': cycle: a -> b -> a" in (
        result.output
    )
    assert "broken.py:1: syntax error" in result.output
    assert "3 problems in 3 files (2 DAGs)" in result.output


def test_json_output(tmp_path: Path) -> None:
    write_dag(tmp_path, "good.py", GOOD)
    bad = write_dag(tmp_path, "bad.py", BAD)

    result = runner.invoke(app, ["dags", "validate", "--json", str(tmp_path)])

    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["valid"] is False and data["files"] == 2
    by_id = {d["dag_id"]: d for d in data["dags"]}
    assert by_id["good"]["valid"] is True and len(by_id["good"]["content_hash"]) == 64
    assert by_id["good"]["tasks"] == 2
    assert by_id["bad"]["content_hash"] is None
    executor_problem = next(p for p in data["problems"] if "executor" in p["message"])
    assert executor_problem["line"] == line_of(bad, "# bad executor")
    assert executor_problem["task_id"] == "b" and executor_problem["dag_id"] == "bad"


def test_validate_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    write_dag(tmp_path, "_helper.py", "X = 1\n")
    write_dag(tmp_path, "good.py", "import _helper\n" + GOOD)
    before = sorted(p.name for p in tmp_path.rglob("*"))

    runner.invoke(app, ["dags", "validate", str(tmp_path)])

    assert sorted(p.name for p in tmp_path.rglob("*")) == before


SPINS = """
import time
while True:
    time.sleep(0.01)
"""


def test_a_file_that_hangs_at_import_is_one_more_broken_file(tmp_path: Path) -> None:
    write_dag(tmp_path, "good.py", GOOD)
    write_dag(tmp_path, "hangs.py", SPINS)

    result = runner.invoke(app, ["dags", "validate", str(tmp_path), "--import-timeout", "0.5"])

    assert result.exit_code == 1
    assert "hangs.py: import timed out after 0.5 s (dagbag_import_timeout)" in result.output
    assert "good" in result.output and "1 problem" in result.output


def test_the_airflow_setting_bounds_the_import_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLIPSTREAM_DAGBAG_IMPORT_TIMEOUT", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "0.5")
    write_dag(tmp_path, "hangs.py", SPINS)

    result = runner.invoke(app, ["dags", "validate", str(tmp_path), "--json"])

    assert result.exit_code == 1
    (problem,) = json.loads(result.output)["problems"]
    assert problem["message"] == "import timed out after 0.5 s (dagbag_import_timeout)"
