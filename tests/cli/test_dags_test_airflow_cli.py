"""`slipstream dags test` on Airflow DAG files, with Airflow's variables and connections files."""

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

CORPUS = Path(__file__).resolve().parent.parent / "airflow_corpus"
SECRETS_DAG = str(CORPUS / "secrets_from_env.py")


@pytest.fixture(autouse=True)
def no_store_no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    lookup.install_backend(None)


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_variables_and_connections_files_supply_an_airflow_dag(tmp_path: Path, kind: str) -> None:
    if kind == "json":
        variables = _write(
            tmp_path,
            "variables.json",
            json.dumps({"corpus_limit": "10", "corpus_settings": {"table": "sales"}}),
        )
        connections = _write(
            tmp_path,
            "connections.json",
            json.dumps({"corpus_db": {"conn_type": "postgres", "host": "db.example.com"}}),
        )
    else:
        variables = _write(
            tmp_path, "variables.yaml", "corpus_limit: '10'\ncorpus_settings:\n  table: sales\n"
        )
        connections = _write(
            tmp_path, "connections.yaml", "corpus_db: postgres://u:p@db.example.com:5432/dw\n"
        )

    result = runner.invoke(
        app,
        [
            "dags",
            "test",
            SECRETS_DAG,
            "corpus_secrets",
            "--variables",
            variables,
            "--connections",
            connections,
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["task_states"] == {"read": "success", "templated": "success"}


def test_environment_variables_supply_an_airflow_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CORPUS_LIMIT", "10")
    monkeypatch.setenv("AIRFLOW_VAR_CORPUS_SETTINGS", '{"table": "sales"}')
    monkeypatch.setenv(
        "AIRFLOW_CONN_CORPUS_DB", '{"conn_type": "postgres", "host": "db.example.com"}'
    )

    result = runner.invoke(app, ["dags", "test", SECRETS_DAG, "corpus_secrets", "--quiet"])

    assert result.exit_code == 0, result.output
    assert "corpus_secrets" in result.stdout and ": success" in result.stdout


def test_a_bad_variables_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    variables = _write(tmp_path, "variables.env", "corpus_limit 10\n")

    result = runner.invoke(
        app, ["dags", "test", SECRETS_DAG, "corpus_secrets", "--variables", variables]
    )

    assert result.exit_code == 2
    assert result.stderr.strip() == f"{variables}:1: expected KEY=value"


def test_a_missing_airflow_name_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "legacy.py",
        "from airflow import DAG\nfrom airflow.operators.email import EmailOperator\n",
    )

    result = runner.invoke(app, ["dags", "test", path, "legacy"])

    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.endswith(
        "legacy.py:2: airflow.operators.email.EmailOperator is not available in Slipstream: "
        "Slipstream sends no e-mail; publish to SNS or SES from a @task or a callback"
    )


def test_validate_reports_a_missing_airflow_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "legacy.py", "from airflow.operators.python import PythonVirtualenvOperator\n"
    )

    result = runner.invoke(app, ["dags", "validate", path])

    assert result.exit_code != 0
    assert "legacy.py:1: airflow.operators.python.PythonVirtualenvOperator is not available" in (
        result.output
    )


def test_no_aws_at_all_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A laptop with no AWS: the store is not read, so Variable.get's default_var applies."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)

    result = runner.invoke(
        app, ["dags", "test", str(CORPUS / "classic_dag_kwarg.py"), "corpus_classic", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "success"


def test_dags_test_runs_a_mapped_task_group_index_by_index() -> None:
    """The corpus's mapped group: the branch of index 1 skips only that upload."""
    result = runner.invoke(
        app,
        [
            "dags",
            "test",
            str(CORPUS / "mapped_task_group.py"),
            "corpus_mapped_task_group",
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    states = json.loads(result.stdout)["task_states"]
    assert [states[f"process.upload[{i}]"] for i in range(3)] == ["success", "skipped", "success"]
    assert states["process.note_empty[1]"] == "success"
    assert states["report"] == "success"


def test_dags_test_runs_setup_and_teardown_tasks_and_ignores_a_failed_teardown() -> None:
    dag_file = str(CORPUS / "setup_teardown.py")

    result = runner.invoke(app, ["dags", "test", dag_file, "corpus_setup_teardown", "--json"])

    assert result.exit_code == 0, result.output  # exit 0: the run succeeded
    answer = json.loads(result.stdout)
    states = answer["task_states"]
    assert states["delete_bucket"] == "failed"  # a teardown: the run still succeeds
    assert states["check"] == "success" and states["stop_cluster"] == "success"
    assert {states[t] for t in ("provision", "use_provisioned", "deprovision")} == {"skipped"}


def test_validate_reports_a_setup_followed_by_another_trigger_rule(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "bad_setup.py",
        "from airflow.sdk import DAG\n"
        "from airflow.operators.empty import EmptyOperator\n"
        "with DAG('bad_setup', schedule=None):\n"
        "    s = EmptyOperator(task_id='s').as_setup()\n"
        "    s >> EmptyOperator(task_id='w', trigger_rule='one_failed')\n",
    )

    result = runner.invoke(app, ["dags", "validate", path])

    assert result.exit_code != 0
    assert "bad_setup.py:4:" in result.output
    assert "task 'w' directly downstream of this setup has trigger rule 'one_failed'" in (
        result.output
    )
