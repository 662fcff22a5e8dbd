"""``slipstream dev demo DAG_ID``: that DAG runs once and nothing else; mistakes are one line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from chalicelib import wiring
from chalicelib.cli.dev import run_demo
from chalicelib.cli.main import _register_commands, app
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.states import DagRunState
from chalicelib.local.stack import LocalStack
from tests.deploy.projects import imports_restored, make_project

_register_commands()
runner = CliRunner()

STRICT = """
from chalicelib.sdk import DAG, Param
from operators.empty import EmptyOperator

with DAG("strict", schedule=None, params={"n": Param(1, type="integer")}):
    EmptyOperator(task_id="only")
"""


def test_demo_runs_its_dag_and_leaves_every_other_dag_paused(tmp_path: Path) -> None:
    with imports_restored():
        project = make_project(tmp_path / "project")  # "hello" is @daily: unpaused, it runs
        project.write("dags/strict.py", STRICT)
        quiet = Console(file=io.StringIO())
        with LocalStack(workers=1, tick_seconds=3600) as stack:
            final = run_demo(stack, project.root, "on_demand", {}, 120, quiet)

            assert final.state is DagRunState.SUCCESS
            assert wiring.scheduler().tick().runs_created == []
            assert wiring.state_store().get_dag("hello").paused

            with pytest.raises(SlipstreamError, match=r"no DAG 'nope' in .*; found: hello, "):
                run_demo(stack, project.root, "nope", {}, 120, quiet)
            with pytest.raises(SlipstreamError, match="param 'n'"):
                run_demo(stack, project.root, "strict", {"n": "many"}, 120, quiet)


def test_an_unknown_dag_is_one_line_and_exit_two(tmp_path: Path) -> None:
    with imports_restored():
        project = make_project(tmp_path / "project")
        result = runner.invoke(
            app, ["dev", "demo", "nope", "--project", str(project.root), "--workers", "1"]
        )

    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: no DAG 'nope' in ")
    assert "Traceback" not in result.output


def test_bad_conf_json_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dev", "demo", "on_demand", "--conf", "{oops"])

    assert result.exit_code == 2
    assert result.output.strip().startswith("error: --conf is not valid JSON")
    assert len(result.output.strip().splitlines()) == 1
