"""The stage ``make deploy`` builds, run end to end on moto (tests/deploy/stage/deployed.py
says how, and what moto's CloudFormation cannot create)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import wiring
from chalicelib.core.states import DagRunState
from tests.deploy.stage.deployed import FUNCTIONS, STAGE, Deployed


def test_every_function_gets_the_stack_outputs_from_the_package(deployed: Deployed) -> None:
    resources = deployed.template["Resources"]
    for resource in FUNCTIONS:
        env = resources[resource]["Properties"]["Environment"]["Variables"]
        assert env["SLIPSTREAM_STAGE"] == STAGE
        assert env["SLIPSTREAM_BUCKET"] == deployed.outputs["StateBucketName"]
        assert env["SLIPSTREAM_QUEUE_URL"] == deployed.outputs["SchedulerQueueUrl"]
        assert env["SLIPSTREAM_WORKER_FUNCTION"] == f"slipstream-{STAGE}-worker"
        assert env["SLIPSTREAM_ECS_CLUSTER"] == deployed.outputs["WorkerClusterName"]
        assert "us-east-1" not in json.dumps({k: v for k, v in env.items() if "REGION" in k})


def test_the_packaged_worker_has_the_name_timeout_and_retries_the_others_expect(
    deployed: Deployed,
) -> None:
    worker = deployed.template["Resources"]["Worker"]["Properties"]
    assert worker["FunctionName"] == deployed.outputs["WorkerFunctionName"]
    assert worker["Timeout"] == 900
    assert worker["ReservedConcurrentExecutions"] == 10
    invoke = worker["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 0
    assert (
        invoke["DestinationConfig"]["OnFailure"]["Destination"]
        == (deployed.outputs["SchedulerQueueArn"])
    )


def test_each_function_has_its_own_role_and_every_log_group_expires(deployed: Deployed) -> None:
    resources = deployed.template["Resources"]
    roles = {resources[r]["Properties"]["Role"]["Fn::GetAtt"][0] for r in FUNCTIONS}
    assert len(roles) == len(FUNCTIONS)
    assert "DefaultRole" not in resources
    log_groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(log_groups) == len(FUNCTIONS)
    assert all(g["Properties"]["RetentionInDays"] == 14 for g in log_groups)


def test_a_dag_runs_end_to_end_with_a_retry(deployed: Deployed) -> None:
    run_id = deployed.results["run_id"]
    store = wiring.state_store()
    run = store.get_run("etl_hourly", run_id)
    assert run is not None and run.state is DagRunState.SUCCESS
    by_task = {t["task_id"]: t for t in deployed.results["tries"]["task_instances"]}
    assert by_task["wait_for_source"]["try_number"] == 2  # failed once, then retried
    assert {t["state"] for t in by_task.values()} == {"success"}


def test_the_tick_and_an_s3_upload_start_runs_through_the_stack(deployed: Deployed) -> None:
    created = set(deployed.results["tick"]["runs_created"])
    listed = deployed.results["listed"]["dag_runs"]
    scheduled = {r["dag_run_id"] for r in listed if r["run_type"] == "scheduled"}
    assert created and scheduled == created
    assert {r["state"] for r in listed if r["dag_id"] != "branching"} == {"success"}
    s3_runs = [r for r in deployed.results["s3_runs"] if r["dag_run_id"].startswith("event__")]
    assert len(s3_runs) == 1 and s3_runs[0]["state"] == "success"


def test_a_crashed_worker_invoke_fails_its_try_through_the_failure_record(
    deployed: Deployed,
) -> None:
    by_task = {t["task_id"]: t for t in deployed.results["crashed"]}
    assert by_task["pick_report"]["state"] == "failed"
    assert by_task["pick_report"]["try_number"] == 1
    assert by_task["publish"]["state"] == "upstream_failed"


def test_the_packaged_template_passes_cfn_lint(deployed: Deployed) -> None:
    """cfn-lint expands the SAM transform itself, so this lints what CloudFormation gets."""
    lint = Path(sys.executable).with_name("cfn-lint")
    if not lint.exists():
        pytest.skip("cfn-lint is not installed in this environment")
    done = subprocess.run(
        [str(lint), str(deployed.project / "out" / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
