"""A stage deployed as ``make deploy`` does it, end to end on moto.

The infra stack is created by moto's CloudFormation from infra/stack.yaml, the
stage is wired from its outputs (``stage_wiring.wire_project``, what ``stage
wire`` runs), ``chalice package`` builds the stage's SAM template, and the
functions run with the environment that template gives them. Then a DAG is
triggered over the API, its tries run through the worker (with the worker's
own hand-off and a retry), the tick creates scheduled runs, an S3 upload
starts a run through the stack's EventBridge rule, and a crashed async invoke
comes back as a failure record. Every AWS call is recorded per function for
tests/deploy/test_iam_policies.py.

What moto's CloudFormation cannot create, made here directly: the SAM
functions themselves (moto has no Serverless transform and runs no Lambda
code), so the worker function is created with ``lambda.create_function``
under the packaged name, and the handlers run in this process. The
``AWS::SQS::QueuePolicy`` is skipped by moto (tests/infra checks it in the
template).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import wiring
from chalicelib.deploy.stage_wiring import StackFacts, wire_project
from tests.deploy.stage.aws_calls import CallRecorder

ROOT = Path(__file__).resolve().parents[3]
STAGE = "e2e"
STACK = f"slipstream-{STAGE}-infra"
REGION = "us-east-1"
ACCOUNT = "123456789012"
DATA_BUCKET = "landing-zone"
FUNCTIONS = {
    "APIHandler": "api_handler",
    "SchedulerTick": "scheduler_tick",
    "SchedulerEvents": "scheduler_events",
    "Worker": "worker",
}


class FakeClock:
    """The scheduler's clock, moved forward when only delayed timers remain."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Deployed:
    project: Path
    outputs: dict[str, str]
    template: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    recorder: CallRecorder = field(default_factory=CallRecorder)
    results: dict[str, Any] = field(default_factory=dict)


def _copy_project(target: Path) -> Path:
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "chalicelib", target / "chalicelib", ignore=ignore)
    shutil.copytree(ROOT / "infra" / "policies", target / "infra" / "policies")
    (target / ".chalice").mkdir()
    shutil.copy(ROOT / ".chalice" / "config.json", target / ".chalice" / "config.json")
    return target


def _create_stack() -> dict[str, Any]:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tried to parse AWS::SQS::QueuePolicy")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=(ROOT / "infra" / "stack.yaml").read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": STAGE}],
            Capabilities=["CAPABILITY_IAM"],
        )
    (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    return dict(described)


def _package(project: Path) -> dict[str, Any]:
    """``chalice package`` of the wired stage, as ``make deploy`` runs it."""
    chalice = Path(sys.executable).with_name("chalice")
    done = subprocess.run(
        [
            str(chalice),
            "package",
            "--stage",
            STAGE,
            "--merge-template",
            f".chalice/merge-{STAGE}.json",
            "out",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={
            "PATH": str(chalice.parent) + ":/usr/bin:/bin",
            "AWS_DEFAULT_REGION": REGION,
            "HOME": str(Path.home()),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    template: dict[str, Any] = json.loads((project / "out" / "sam.json").read_text())
    return template


def _create_worker_function(name: str, policy: dict[str, Any]) -> None:
    """The one function the others call by name; moto cannot create SAM resources."""
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"slipstream-{STAGE}-worker",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    iam.put_role_policy(
        RoleName=role["RoleName"], PolicyName="worker", PolicyDocument=json.dumps(policy)
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", (ROOT / "app.py").read_text())
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Arn"],
        Handler="app.worker",
        Code={"ZipFile": code.getvalue()},
    )


class Driver:
    """Runs the functions the way Lambda would for what the queue and invokes hold."""

    def __init__(self, deployed: Deployed, client: Any, clock: FakeClock) -> None:
        self.deployed = deployed
        self.client = client
        self.clock = clock
        self.sqs = boto3.client("sqs")
        self.url = deployed.outputs["SchedulerQueueUrl"]
        self.queue_name = deployed.outputs["SchedulerQueueName"]
        self.last: str | None = None
        self.crash_next = 0
        self.containers = 0

    def _new_container(self) -> None:
        """Each function runs in its own Lambda container: none sees the bundles
        another one downloaded, so each records the S3 reads it really needs."""
        from chalicelib.deploy import bundle_store

        self.containers += 1
        bundle_store.DEFAULT_CACHE_DIR = self.deployed.project / f"container-{self.containers}"
        wiring.bundle_store.cache_clear()

    def invoke(self, function: str, event: Any) -> Any:
        if function != self.last:
            self._new_container()
            self.last = function
        with self.deployed.recorder.running(function):
            return self.client.lambda_.invoke(function, event).payload

    def _report_crash(self, payload: dict[str, Any]) -> None:
        """What Lambda's on-failure destination sends when the worker dies (here: out
        of memory), delivered twice as SQS may."""
        record = {
            "version": "1.0",
            "timestamp": self.clock().isoformat(),
            "requestContext": {
                "requestId": "crashed-invoke",
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
                f"{self.deployed.outputs['WorkerFunctionName']}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1,
            },
            "requestPayload": payload,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": "Runtime exited with error: signal: killed",
            },
        }
        for _ in range(2):
            self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(record))

    def _release_delayed(self) -> bool:
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[ACCOUNT][REGION].queues[self.queue_name]
        delayed = [m for m in queue._messages if m.delayed]
        for message in delayed:
            message.delayed_until = 0
        return bool(delayed)

    def settle(self, rounds: int = 300) -> None:
        for _ in range(rounds):
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if batch:
                event = self.client.events.generate_sqs_event(
                    message_bodies=[m["Body"] for m in batch], queue_name=self.queue_name
                )
                answer = self.invoke("scheduler_events", event)
                assert answer == {"batchItemFailures": []}, answer
                self.sqs.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(batch)
                    ],
                )
            invokes = self.deployed.recorder.take_invokes()
            for invoke in invokes:
                assert invoke["FunctionName"] == self.deployed.outputs["WorkerFunctionName"]
                assert invoke["InvocationType"] == "Event"
                if self.crash_next:
                    self.crash_next -= 1
                    self._report_crash(json.loads(invoke["Payload"]))
                    continue
                self.invoke("worker", json.loads(invoke["Payload"]))
            if not batch and not invokes:
                if not self._release_delayed():
                    return
                self.clock.now += dt.timedelta(minutes=5)
        raise AssertionError("the stage did not settle")


def _quoted(run_id: str) -> str:
    return run_id.replace(":", "%3A").replace("+", "%2B")


def _admin_calls(client: Any, headers: dict[str, str], run_id: str) -> dict[str, int]:
    """The API's other stores: connections, variables, a try's log (status by call)."""
    quoted = _quoted(run_id)
    calls = {
        "POST connection": (
            "POST",
            "/api/v2/connections",
            {
                "connection_id": "warehouse",
                "conn_type": "postgres",
                "host": "db.internal",
                "password": "s3cret",
            },
        ),
        "GET connection": ("GET", "/api/v2/connections/warehouse", None),
        "PATCH connection": (
            "PATCH",
            "/api/v2/connections/warehouse",
            {"connection_id": "warehouse", "conn_type": "postgres", "host": "db2.internal"},
        ),
        "GET connections": ("GET", "/api/v2/connections", None),
        "DELETE connection": ("DELETE", "/api/v2/connections/warehouse", None),
        "POST variable": ("POST", "/api/v2/variables", {"key": "region", "value": "eu"}),
        "GET variable": ("GET", "/api/v2/variables/region", None),
        "GET variables": ("GET", "/api/v2/variables", None),
        "DELETE variable": ("DELETE", "/api/v2/variables/region", None),
        "GET log": (
            "GET",
            f"/api/v2/dags/etl_hourly/dagRuns/{quoted}/taskInstances/wait_for_source/logs/1",
            None,
        ),
    }
    statuses = {}
    for name, (method, path, body) in calls.items():
        answer = client.http.request(
            method, path, headers=headers, body=json.dumps(body).encode() if body else b""
        )
        statuses[name] = answer.status_code
    return statuses


def _scenario(deployed: Deployed, clock: FakeClock) -> None:
    from chalice.test import Client

    import app
    from chalicelib.api import deps
    from chalicelib.deploy.deployer import deploy

    report = deploy(
        [str(ROOT / "dags")],
        store=wiring.state_store(),
        bundles=wiring.bundle_store(),
        bundle_root=str(ROOT),
        now=clock(),
        stage=STAGE,
        paused_at_creation=False,
    )
    assert report.ok, report.problems
    _, key = deps.api_keys().create(tenant="default", role="admin", now=clock(), name="e2e")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=DATA_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    with Client(app.app, stage_name=STAGE, project_dir=str(deployed.project)) as client:
        driver = Driver(deployed, client, clock)
        with deployed.recorder.running("api_handler"):
            health = client.http.get("/api/v2/monitor/health")
            created = client.http.post(
                "/api/v2/dags/etl_hourly/dagRuns",
                headers=headers,
                body=json.dumps({"logical_date": None, "conf": {}}),
            )
        assert health.status_code == 200, health.body
        assert created.status_code == 200, created.body
        run_id = json.loads(created.body)["dag_run_id"]
        deployed.results["tick"] = driver.invoke(
            "scheduler_tick",
            client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            ),
        )
        s3.put_object(Bucket=DATA_BUCKET, Key="orders/2024-06-01.csv", Body=b"id\n1\n")
        driver.settle()
        # A worker that dies in Lambda: its failure record fails the try.
        with deployed.recorder.running("api_handler"):
            crashed = client.http.post(
                "/api/v2/dags/branching/dagRuns",
                headers=headers,
                body=json.dumps({"logical_date": None}),
            )
        assert crashed.status_code == 200, crashed.body
        driver.crash_next = 1
        driver.settle()
        with deployed.recorder.running("api_handler"):
            crashed_run = json.loads(crashed.body)["dag_run_id"]
            deployed.results["crashed"] = json.loads(
                client.http.get(
                    f"/api/v2/dags/branching/dagRuns/{_quoted(crashed_run)}/taskInstances",
                    headers=headers,
                ).body
            )["task_instances"]
        with deployed.recorder.running("api_handler"):
            listed = client.http.get("/api/v2/dags/~/dagRuns", headers=headers)
            s3_runs = client.http.get("/api/v2/dags/s3_ingest/dagRuns", headers=headers)
            tries = client.http.get(
                f"/api/v2/dags/etl_hourly/dagRuns/{run_id}/taskInstances", headers=headers
            )
        with deployed.recorder.running("api_handler"):
            deployed.results["admin_calls"] = _admin_calls(client, headers, run_id)
        deployed.results.update(
            run_id=run_id,
            listed=json.loads(listed.body),
            s3_runs=json.loads(s3_runs.body)["dag_runs"],
            tries=json.loads(tries.body),
        )


def deploy_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    project = _copy_project(tmp_path_factory.mktemp("project"))
    with pytest.MonkeyPatch.context() as patch, mock_aws(config={"lambda": {"use_docker": False}}):
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        described = _create_stack()
        facts = StackFacts.from_description(STAGE, described)
        wire_project(project, facts)
        template = _package(project)
        policies = {
            function: json.loads(
                (project / ".chalice" / f"policy-{STAGE}-{function}.json").read_text()
            )
            for function in FUNCTIONS.values()
        }
        outputs = dict(facts.outputs)
        deployed = Deployed(project, outputs, template, policies)
        # The functions' environment is what the packaged template gives them.
        env = template["Resources"]["SchedulerEvents"]["Properties"]["Environment"]["Variables"]
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("AWS_REGION", REGION)
        for name in ("SLIPSTREAM_ENDPOINT_URL", "SLIPSTREAM_REGION"):
            patch.delenv(name, raising=False)
        patch.setenv("SLIPSTREAM_DEMO_OUT", str(project / "demo-out"))  # etl_hourly's CSV
        patch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        _create_worker_function(outputs["WorkerFunctionName"], policies["worker"])
        clock = FakeClock()
        patch.setattr(wiring, "utc_now", clock)
        from chalicelib.deploy import bundle_store

        patch.setattr(bundle_store, "DEFAULT_CACHE_DIR", bundle_store.DEFAULT_CACHE_DIR)
        wiring.reset()
        try:
            with deployed.recorder.recording():
                _scenario(deployed, clock)
            yield deployed
        finally:
            wiring.reset()
