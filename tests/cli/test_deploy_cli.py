"""``slipstream dags deploy`` against DynamoDB and S3 on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.credentials  # type: ignore[import-untyped]
import pytest
from moto import mock_aws
from typer.testing import CliRunner

import chalicelib.cli.deploy  # noqa: F401  (registers the command)
from chalicelib.cli.main import app
from chalicelib.deploy.deployer import manifest_key
from chalicelib.sdk.source import display_path
from chalicelib.store.models import StoreModels, build_models, create_tables
from chalicelib.store.settings import StoreSettings
from tests.deploy.projects import Project, imports_restored, make_project

BUCKET = "slipstream-cli-test"
STAGE = "clitest"

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with imports_restored():
        yield make_project(tmp_path / "project")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, StoreModels]]:
    monkeypatch.setenv("SLIPSTREAM_BUCKET", BUCKET)
    monkeypatch.setenv("SLIPSTREAM_STAGE", "dev")
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    with mock_aws():
        models = build_models(StoreSettings(stage=STAGE, bucket=BUCKET))
        create_tables(models)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, models


def deploy_cli(*args: str) -> Any:
    return runner.invoke(app, ["dags", "deploy", *args, "--stage", STAGE])


def test_deploy_prints_the_dags_and_writes_bundle_and_versions(
    project: Project, aws: tuple[Any, StoreModels]
) -> None:
    s3, models = aws

    result = deploy_cli(str(project.root))

    assert result.exit_code == 0, result.output
    assert "hello" in result.output and "on_demand" in result.output
    assert "created" in result.output and "bundles/" in result.output
    assert [v.vnum for v in models.dag_version.by_number.query("hello")] == [1]
    assert [v.vnum for v in models.dag_version.by_number.query("on_demand")] == [1]
    assert models.dag.get("hello").paused is True
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert manifest_key(STAGE) in keys and any(k.startswith("bundles/") for k in keys)


def test_json_output_and_unpause(project: Project, aws: tuple[Any, StoreModels]) -> None:
    _, models = aws

    first = deploy_cli(str(project.root), "--json", "--unpause")
    again = deploy_cli(str(project.root), "--json")

    assert first.exit_code == 0 and again.exit_code == 0, again.output
    body = json.loads(again.output)
    assert body["ok"] is True and body["stage"] == STAGE and body["deactivated"] == []
    assert {d["dag_id"]: d["status"] for d in body["dags"]} == {
        "hello": "unchanged",
        "on_demand": "unchanged",
    }
    assert [d["paused"] for d in json.loads(first.output)["dags"]] == [False, False]
    assert models.dag.get("hello").paused is False


def test_a_broken_dag_exits_one_with_located_problems_and_writes_nothing(
    project: Project, aws: tuple[Any, StoreModels]
) -> None:
    s3, models = aws
    broken = project.write("dags/broken.py", "from chalicelib.sdk import DAG\nDAG(\n")

    result = deploy_cli(str(project.root))

    assert result.exit_code == 1
    assert f"{display_path(str(broken))}:2: syntax error" in result.output
    assert "nothing was deployed" in result.output
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert models.dag_version.count() == 0 and models.dag.count() == 0


def test_a_removed_dag_is_reported_inactive(project: Project, aws: tuple[Any, StoreModels]) -> None:
    _, models = aws
    assert deploy_cli(str(project.root)).exit_code == 0
    project.remove("dags/on_demand.py")

    result = deploy_cli(str(project.root), "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deactivated"] == ["on_demand"]
    assert models.dag.get("on_demand").active is False


def test_a_folder_without_dags_is_refused(project: Project, aws: tuple[Any, StoreModels]) -> None:
    result = deploy_cli(str(project.dags), "--json")

    assert result.exit_code == 1
    assert "no dags/ folder" in json.loads(result.output)["problems"][0]["message"]


def test_a_dag_file_that_hangs_at_import_deploys_nothing(
    project: Project, aws: tuple[Any, StoreModels]
) -> None:
    s3, models = aws
    project.write("dags/hangs.py", "import time\nwhile True:\n    time.sleep(0.01)\n")

    result = deploy_cli(str(project.root), "--import-timeout", "0.5")

    assert result.exit_code == 1
    assert "hangs.py: import timed out after 0.5 s (dagbag_import_timeout)" in result.output
    assert "nothing was deployed" in result.output
    assert list(models.dag.scan()) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def one_error_line(result: Any) -> str:
    """The output is one ``error: ...`` line and no traceback; that line."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return str(lines[0])


class NoCredentials:
    """A credential chain that finds nothing, whatever this machine or process holds."""

    def load_credentials(self) -> None:
        return None


def test_no_aws_credentials_is_one_line(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(
        botocore.credentials, "create_credential_resolver", lambda *a, **k: NoCredentials()
    )
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it may hold an earlier test's keys

    result = deploy_cli(str(project.root))

    assert result.exit_code == 2, result.output
    assert one_error_line(result).startswith("error: no AWS credentials found: set AWS_PROFILE")


def test_a_missing_bucket_is_one_line_and_writes_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_BUCKET", "not-created-yet")
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    with mock_aws():
        models = build_models(StoreSettings(stage=STAGE, bucket="not-created-yet"))
        create_tables(models)

        result = deploy_cli(str(project.root))

        assert list(models.dag.scan()) == []
    assert result.exit_code == 2
    assert one_error_line(result).startswith(
        "error: bucket 'not-created-yet' does not exist (stage 'clitest' in us-east-1)"
    )


def test_missing_tables_are_one_line(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_BUCKET", BUCKET)
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)

        result = deploy_cli(str(project.root))

    assert result.exit_code == 2
    assert one_error_line(result).startswith(
        "error: the state tables of stage 'clitest' in us-east-1 do not exist"
    )
