"""`slipstream dags test` on an Airflow DAG file that maps over XComArg.map and .zip results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app
from chalicelib.secrets import lookup

_register_commands()
runner = CliRunner()

MAP_ZIP_DAG = str(Path(__file__).resolve().parent.parent / "airflow_corpus" / "xcom_map_zip.py")


@pytest.fixture(autouse=True)
def no_store_no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    lookup.install_backend(None)


def test_dags_test_runs_map_zip_fillvalue_and_skip_in_the_function() -> None:
    result = runner.invoke(app, ["dags", "test", MAP_ZIP_DAG, "corpus_xcom_map_zip", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    states = report["task_states"]
    assert report["state"] == "success", report["errors"]
    assert [states[f"copy[{i}]"] for i in range(3)] == ["success", "success", "skipped"]
    assert sorted(k for k in states if k.startswith("pair_shortest")) == [
        "pair_shortest[0]",
        "pair_shortest[1]",
    ]  # zip stops at the shortest input (2 row counts for 3 files)
    assert len([k for k in states if k.startswith("pair_longest")]) == 3  # fillvalue pads
    assert states["verify"] == "success"  # it asserts every value the mapped tasks got


def test_dags_test_table_shows_the_skipped_instance() -> None:
    result = runner.invoke(app, ["dags", "test", MAP_ZIP_DAG, "corpus_xcom_map_zip"])

    assert result.exit_code == 0, result.output
    assert "1 skipped, 2 success" in result.output
