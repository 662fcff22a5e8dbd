"""`slipstream dags test`: exit codes, output and input errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app

_register_commands()
runner = CliRunner()

GOOD = """
from chalicelib.sdk import DAG, task

with DAG("good", params={"n": 1}) as dag:
    @task
    def square(params=None) -> int:
        return params["n"] ** 2

    @task
    def check(value: int) -> None:
        assert value >= 0

    check(square())
"""

FAILING = """
from chalicelib.sdk import DAG, task

with DAG("failing") as dag:
    @task
    def boom() -> None:
        raise RuntimeError("kaput")

    boom()
"""

BROKEN = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("broken") as dag:
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b >> a
"""


@pytest.fixture
def dag_file(tmp_path: Path):
    def write(body: str, name: str = "pipeline.py") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return str(path)

    return write


def test_successful_run_exits_zero_and_prints_the_table(dag_file) -> None:
    result = runner.invoke(app, ["dags", "test", dag_file(GOOD), "good"])
    assert result.exit_code == 0, result.output
    assert "square" in result.output and "check" in result.output
    assert "Run success" in result.output


def test_json_output_with_conf(dag_file) -> None:
    result = runner.invoke(
        app, ["dags", "test", dag_file(GOOD), "good", "--conf", '{"n": 3}', "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["state"] == "success"
    assert data["task_states"] == {"square": "success", "check": "success"}
    assert data["run_id"].startswith("manual__")


def test_logical_date_option(dag_file) -> None:
    result = runner.invoke(
        app,
        [
            "dags",
            "test",
            dag_file(GOOD),
            "good",
            "--logical-date",
            "2024-01-02T03:04:05Z",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["logical_date"] == "2024-01-02T03:04:05+00:00"


def test_failed_run_exits_one_and_names_the_error(dag_file) -> None:
    result = runner.invoke(app, ["dags", "test", dag_file(FAILING), "failing"])
    assert result.exit_code == 1
    assert "RuntimeError: kaput" in result.output


def test_invalid_dag_exits_one_with_file_and_cycle(dag_file) -> None:
    path = dag_file(BROKEN)
    result = runner.invoke(app, ["dags", "test", path, "broken"])
    assert result.exit_code == 1
    assert "cycle" in result.output
    assert "pipeline.py" in result.output


@pytest.mark.parametrize(
    ("conf", "message"),
    [("{not json", "--conf is not valid JSON"), ("[1, 2]", "--conf must be a JSON object")],
)
def test_bad_conf_exits_two(dag_file, conf: str, message: str) -> None:
    result = runner.invoke(app, ["dags", "test", dag_file(GOOD), "good", "--conf", conf])
    assert result.exit_code == 2
    assert message in result.output


def test_unknown_dag_id_exits_two(dag_file) -> None:
    result = runner.invoke(app, ["dags", "test", dag_file(GOOD), "nope"])
    assert result.exit_code == 2
    assert "nope" in result.output


def test_bad_logical_date_exits_two(dag_file) -> None:
    result = runner.invoke(app, ["dags", "test", dag_file(GOOD), "good", "--logical-date", "soon"])
    assert result.exit_code == 2
    assert "bad logical date" in result.output
