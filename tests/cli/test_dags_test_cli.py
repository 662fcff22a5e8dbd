"""`slipstream dags test`: exit codes, output and input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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

NOISY = """
import logging
import subprocess
import sys

from chalicelib.sdk import DAG, task
from operators.bash import BashOperator

print("printed while the file loads")

with DAG("noisy", params={"fail": False}) as dag:
    @task
    def talk(params=None) -> int:
        print("print from a task")
        sys.stdout.write("sys.stdout from a task\\n")
        logging.getLogger("user.code").warning("warning from a task")
        subprocess.run(["echo", "child process output"], check=True)
        if params["fail"]:
            raise RuntimeError("asked to fail")
        return 1

    shell = BashOperator(task_id="shell", bash_command="echo bash output; echo bash err >&2")
    talk() >> shell
"""

NOT_LOADING = """
from chalicelib.sdk import DAG
raise ImportError("no such module: warehouse")
"""

STRICT_PARAMS = """
from chalicelib.sdk import DAG, Param, task

with DAG("strict", params={"n": Param(1, type="integer")}) as dag:
    @task
    def never() -> None:
        print("must not run")

    never()
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
    data = json.loads(result.stdout)
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
    assert json.loads(result.stdout)["logical_date"] == "2024-01-02T03:04:05+00:00"


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


NOISY_OUTPUT = (
    "print from a task",
    "sys.stdout from a task",
    "warning from a task",
    "child process output",
    "bash output",
    "bash err",
)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in a real process, so a child's inherited stdout is really fd 1."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "dags", "test", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("conf", "code", "state"), [("{}", 0, "success"), ('{"fail": true}', 1, "failed")]
)
def test_json_stdout_is_one_document_while_tasks_print(
    dag_file, conf: str, code: int, state: str
) -> None:
    completed = _run_cli(dag_file(NOISY), "noisy", "--conf", conf, "--json")

    assert completed.returncode == code, completed.stderr
    data = json.loads(completed.stdout)  # the whole of stdout, nothing before or after
    assert data["state"] == state
    assert set(data["task_states"]) == {"talk", "shell"}
    assert data["tries"]["talk"] == 1
    for text in NOISY_OUTPUT[:4]:
        assert text in completed.stderr
    if code == 0:
        assert "bash output" in completed.stderr and "bash err" in completed.stderr
    assert "printed while the file loads" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_json_matches_what_dag_test_returns(dag_file) -> None:
    result = runner.invoke(app, ["dags", "test", dag_file(NOISY), "noisy", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"state", "task_states", "tries"} <= set(data)
    assert data["task_states"] == {"talk": "success", "shell": "success"}
    assert data["tries"] == {"talk": 1, "shell": 1}
    assert "print from a task" in result.stderr


@pytest.mark.parametrize(
    ("body", "dag_id", "conf", "message"),
    [
        (GOOD, "nope", None, "no DAG 'nope'"),
        (NOT_LOADING, "anything", None, "no such module: warehouse"),
        (GOOD, "good", "{not json", "--conf is not valid JSON"),
        (STRICT_PARAMS, "strict", '{"n": "many"}', "n"),
    ],
)
def test_bad_input_exits_two_with_one_line_and_no_traceback(
    dag_file, body: str, dag_id: str, conf: str | None, message: str
) -> None:
    args = [dag_file(body), dag_id, "--json"] + (["--conf", conf] if conf else [])
    completed = _run_cli(*args)

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "must not run" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_a_dag_file_that_hangs_at_import_exits_two_with_one_line(dag_file) -> None:
    path = dag_file("import time\nwhile True:\n    time.sleep(0.01)\n", name="hangs.py")

    result = runner.invoke(app, ["dags", "test", path, "any", "--import-timeout", "0.5"])

    assert result.exit_code == 2
    assert result.output.strip().endswith(
        "hangs.py: import timed out after 0.5 s (dagbag_import_timeout)"
    )
    assert len(result.output.strip().splitlines()) == 1
