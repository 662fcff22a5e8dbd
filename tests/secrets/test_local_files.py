"""Variables and connections files in Airflow's formats, and where they sit in the lookup order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.sdk import BaseHook, Variable
from chalicelib.secrets import lookup
from chalicelib.secrets.connection import Connection
from chalicelib.secrets.errors import ConnectionNotFound, VariableNotFound
from chalicelib.secrets.local_files import (
    LocalFileError,
    aws_configured,
    load_connections,
    load_variables,
    local_secrets,
)


class _EmptyStore:
    """A store that has nothing, as a fresh stack's; says where it looked."""

    def connection_location(self, tenant: str, conn_id: str) -> str:
        return f"the store ({tenant}/{conn_id})"

    def read_connection(self, tenant: str, conn_id: str) -> Connection | None:
        return None

    def variable_location(self, tenant: str, key: str) -> str:
        return f"the store ({tenant}/{key})"

    def read_variable(self, tenant: str, key: str) -> str | None:
        return None


@pytest.fixture(autouse=True)
def empty_store() -> None:
    lookup.install_backend(_EmptyStore())


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ variables
def test_variables_json_as_airflow_variables_import_reads_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "vars.json",
        json.dumps(
            {
                "limit": "10",
                "settings": {"table": "sales", "cols": [1, 2]},
                "count": 3,
                "described": {"value": "v", "description": "Airflow 3 export form"},
            }
        ),
    )

    assert load_variables(path) == {
        "limit": "10",
        "settings": '{"table": "sales", "cols": [1, 2]}',
        "count": "3",
        "described": "v",
    }


def test_variables_yaml_and_env(tmp_path: Path) -> None:
    yaml_path = _write(tmp_path, "vars.yaml", "limit: '10'\nsettings:\n  table: sales\n")
    env_path = _write(tmp_path, "vars.env", "# comment\n\nlimit = 10\nurl=http://x/?a=b\n")

    assert load_variables(yaml_path) == {"limit": "10", "settings": '{"table": "sales"}'}
    assert load_variables(env_path) == {"limit": "10", "url": "http://x/?a=b"}


# ---------------------------------------------------------------- connections
def test_connections_json_as_airflow_connections_export_writes_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "conns.json",
        json.dumps(
            {
                "pg": {
                    "conn_type": "postgres",
                    "host": "db.example.com",
                    "login": "etl",
                    "password": "s3cret",
                    "schema": "dw",
                    "port": 5432,
                    "extra": '{"sslmode": "require"}',
                    "description": "warehouse",
                },
                "api": "https://user:pw@api.example.com:8443/v1?timeout=5",
                "by_uri": {"uri": "mysql://me:pw@mysql.local/app"},
                "dejson": {"conn_type": "aws", "extra_dejson": {"region_name": "eu-west-1"}},
            }
        ),
    )

    conns = load_connections(path)

    assert conns["pg"].host == "db.example.com"
    assert conns["pg"].port == 5432
    assert conns["pg"].schema == "dw"
    assert conns["pg"].extra_dejson == {"sslmode": "require"}
    assert conns["pg"].description == "warehouse"
    assert (conns["api"].conn_type, conns["api"].host, conns["api"].port) == (
        "https",
        "api.example.com",
        8443,
    )
    assert conns["api"].extra_dejson == {"timeout": "5"}
    assert (conns["by_uri"].conn_type, conns["by_uri"].login) == ("mysql", "me")
    assert conns["dejson"].extra_dejson == {"region_name": "eu-west-1"}


def test_connections_yaml_and_env(tmp_path: Path) -> None:
    yaml_path = _write(
        tmp_path, "conns.yml", "pg:\n  conn_type: postgres\n  host: h\n  port: 5432\n"
    )
    env_path = _write(
        tmp_path,
        "conns.env",
        'pg=postgres://u:p@h:5432/db\njs={"conn_type": "http", "host": "api"}\n',
    )

    assert load_connections(yaml_path)["pg"].port == 5432
    env = load_connections(env_path)
    assert (env["pg"].login, env["pg"].schema) == ("u", "db")
    assert env["js"].host == "api"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"a": 1,\n  "b": }', "bad.json:2: not valid JSON: Expecting value"),
        ("bad.env", "ok=1\nnot a pair\n", "bad.env:2: expected KEY=value"),
        ("twice.env", "a=1\na=2\n", "twice.env:2: 'a' is given twice"),
        ("list.json", "[1, 2]", "list.json: expected a mapping of names to values at the top"),
        ("bad.yaml", "a: [1\n", "bad.yaml:2: not valid YAML"),
        ("vars.txt", "a=1", "vars.txt: unknown file type; use .json, .yaml, .yml or .env"),
        ("unknown.json", '{"c": {"hostname": "x"}}', "connection 'c': unknown fields ['hostname']"),
        ("both.json", '{"c": {"uri": "http://x", "host": "y"}}', "either uri or the individual"),
        ("other.json", '{"c": {"conn_id": "d"}}', "its conn_id field says 'd'"),
        ("port.json", '{"c": {"port": "x"}}', "expected an integer port, got 'x'"),
    ],
)
def test_bad_files_say_what_and_where_in_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)

    with pytest.raises(LocalFileError) as caught:
        load_connections(path)

    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LocalFileError, match=r"nope\.json: cannot read \(No such file"):
        load_variables(str(tmp_path / "nope.json"))


# --------------------------------------------------------------------- order
def test_files_come_before_environment_before_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = _write(tmp_path, "v.json", '{"both": "from file"}')
    connections = _write(tmp_path, "c.json", '{"both": "http://file.example.com"}')
    monkeypatch.setenv("AIRFLOW_VAR_BOTH", "from env")
    monkeypatch.setenv("AIRFLOW_VAR_ENV_ONLY", "env only")
    monkeypatch.setenv("AIRFLOW_CONN_BOTH", "http://env.example.com")

    with local_secrets(variables, connections):
        assert Variable.get("both") == "from file"
        assert Variable.get("env_only") == "env only"
        assert BaseHook.get_connection("both").host == "file.example.com"
        assert Variable.get("nowhere", default_var="d") == "d"
        with pytest.raises(VariableNotFound) as var_miss:
            Variable.get("nowhere")
        with pytest.raises(ConnectionNotFound) as conn_miss:
            BaseHook.get_connection("nowhere")

    assert str(var_miss.value.args[0]) == (
        f"variable 'nowhere' not found: looked in file {variables}, environment variable "
        "AIRFLOW_VAR_NOWHERE and the store (default/nowhere)"
    )
    assert f"looked in file {connections}, environment variable AIRFLOW_CONN_NOWHERE" in str(
        conn_miss.value
    )
    assert Variable.get("both") == "from env"  # the files are gone with the block
    assert BaseHook.get_connection("both").host == "env.example.com"


def test_json_variable_from_a_file_deserializes(tmp_path: Path) -> None:
    variables = _write(tmp_path, "v.yaml", "cfg:\n  table: sales\n  limit: 5\n")

    with local_secrets(variables_file=variables):
        assert Variable.get("cfg", deserialize_json=True) == {"table": "sales", "limit": 5}


def test_dag_test_takes_airflows_file_arguments(tmp_path: Path) -> None:
    from chalicelib.sdk import DAG, task

    variables = _write(tmp_path, "v.env", "greeting=hi\n")
    connections = _write(tmp_path, "c.yaml", "svc: http://svc.example.com:8080\n")
    with DAG("uses_files", schedule=None) as dag:

        @task
        def read() -> None:
            assert Variable.get("greeting") == "hi"
            assert BaseHook.get_connection("svc").port == 8080

        read()

    result = dag.test(variable_file_path=variables, conn_file_path=connections)

    assert result.task_states == {"read": "success"}, result.errors
    with pytest.raises(VariableNotFound):
        Variable.get("greeting")


def test_without_aws_a_local_test_reads_no_store(tmp_path: Path) -> None:
    class _Unreachable(_EmptyStore):
        def read_variable(self, tenant: str, key: str) -> str | None:
            raise AssertionError("the store must not be read")

        read_connection = read_variable  # type: ignore[assignment]

    lookup.install_backend(_Unreachable())

    with local_secrets(use_store=False):
        assert Variable.get("absent", default_var="fallback") == "fallback"
        with pytest.raises(ConnectionNotFound, match="no store \\(no AWS credentials here"):
            BaseHook.get_connection("absent")


def test_aws_configured_needs_a_setting_or_a_file(tmp_path: Path) -> None:
    no_files = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    assert not aws_configured(no_files)
    assert aws_configured({**no_files, "AWS_PROFILE": "dev"})
    assert aws_configured({**no_files, "SLIPSTREAM_ENDPOINT_URL": "http://127.0.0.1:5000"})
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n")
    assert aws_configured({**no_files, "AWS_CONFIG_FILE": str(config)})
