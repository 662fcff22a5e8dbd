"""A DAG run end to end with its user code in child interpreters (WorkerDeps.task_credentials).

AWS is a moto server on loopback: a child is another process, which an
in-process ``mock_aws`` cannot reach. The worker's credentials are moto's
"testing" keys; the tenant's come from STS AssumeRole with a tenant tag, as
the task-code role will give them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from chalicelib.runtime.isolation import is_dumpable
from chalicelib.secrets.settings import variable_parameter_name
from chalicelib.secrets.variable_store import VariableRecord
from tests.runtime.isolation_stack import bundle_stack

SOURCE = """
import os
from datetime import datetime, timedelta

import boto3

from chalicelib.runtime.isolation import is_dumpable
from chalicelib.sdk import DAG, Variable
from operators.bash import BashOperator
from operators.python import PythonOperator

ENDPOINT = os.environ.get("SLIPSTREAM_ENDPOINT_URL")


def produce(ti):
    ti.xcom_push(key="extra", value=[1, 2])
    return {"n": 3, "when": datetime(2024, 5, 6)}


def consume(ti, templated):
    got = ti.xcom_pull(task_ids="produce")
    extra = ti.xcom_pull(task_ids="produce", key="extra")
    return {"n": got["n"], "year": got["when"].year, "extra": extra, "templated": templated}


def flaky(ti):
    if ti.try_number == 1:
        raise RuntimeError("the first try fails")
    return ti.try_number


def reach_out():
    key = Variable.get("api_key")
    print(f"the key is {key}")
    sts = boto3.client("sts", endpoint_url=ENDPOINT, region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1")
    dynamodb.list_tables()
    frozen = boto3.Session().get_credentials().get_frozen_credentials()
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as f:
            parent_environ = "read" if f.read() else "empty"
    except PermissionError:
        parent_environ = "denied"
    with open("/proc/self/environ", "rb") as f:  # what exec gave the child
        exec_environ = f.read().decode(errors="replace")
    return {
        "exec_environ_has_keys": frozen.secret_key in exec_environ
        or "AWS_SECRET_ACCESS_KEY" in exec_environ,
        "child_dumpable": is_dumpable(),
        "key_length": len(key),
        "arn": sts.get_caller_identity()["Arn"],
        "access_key": frozen.access_key,
        "env": dict(os.environ),
        "parent_environ": parent_environ,
    }


with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    a = PythonOperator(task_id="produce", python_callable=produce)
    b = PythonOperator(
        task_id="consume",
        python_callable=consume,
        op_kwargs={"templated": "{{ ti.xcom_pull(task_ids='produce')['n'] * 2 }}-{{ ds }}"},
    )
    c = BashOperator(
        task_id="bash", bash_command="echo n={{ ti.xcom_pull(task_ids='produce')['n'] }}"
    )
    d = PythonOperator(
        task_id="flaky", python_callable=flaky, retries=1, retry_delay=timedelta(seconds=5)
    )
    e = PythonOperator(task_id="reach_out", python_callable=reach_out)
    a >> [b, c] >> d >> e
"""

TENANT = "acme"
ROLE = "arn:aws:iam::123456789012:role/slipstream-task-code"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("SLIPSTREAM_ENDPOINT_URL", url)
    monkeypatch.setenv("SLIPSTREAM_STAGE", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # What a worker's environment holds and a child must not see.
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/worker")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    monkeypatch.setenv("SLIPSTREAM_TABLE_NAME", "slipstream-test-state")
    try:
        yield url
    finally:
        server.stop()


def sts_credentials(url: str, issued: list[str]) -> Callable[[str], dict[str, str]]:
    """The task-code role, assumed with the tenant as a session tag."""
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1")

    def credentials(tenant: str) -> dict[str, str]:
        found = sts.assume_role(
            RoleArn=ROLE,
            RoleSessionName=f"try-{tenant}",
            Tags=[{"Key": "tenant", "Value": tenant}],
        )["Credentials"]
        issued.append(found["AccessKeyId"])
        return {
            "AWS_ACCESS_KEY_ID": found["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": found["SecretAccessKey"],
            "AWS_SESSION_TOKEN": found["SessionToken"],
        }

    return credentials


def test_a_dag_runs_end_to_end_with_its_code_in_child_interpreters(
    tmp_path: Path, endpoint: str
) -> None:
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1")
    ssm.put_parameter(
        Name=variable_parameter_name("slipstream/test", TENANT, "api_key"),
        Value=VariableRecord(key="api_key", value="s3cr3t-value").to_json(),
        Type="SecureString",
    )
    issued: list[str] = []
    stack, logs = bundle_stack(
        tmp_path, SOURCE, credentials=sts_credentials(endpoint, issued), tenant=TENANT
    )
    run, _ = stack.scheduler.trigger("iso")
    stack.settle()

    assert stack.states("iso", run.run_id) == dict.fromkeys(
        ["produce", "consume", "bash", "flaky", "reach_out"], "success"
    )
    xcoms = stack.xcoms[("iso", run.run_id)]
    assert xcoms.pull("consume", -1, "return_value") == (
        True,
        {"n": 3, "year": 2024, "extra": [1, 2], "templated": "6-2024-01-01"},
    )
    assert ("n=3", "info", "slipstream.task") in logs.events("bash")
    # the retry: the first try failed in its child, the second one passed
    first = logs.events("flaky", 1)
    assert any("the first try fails" in event for event, _, _ in first)
    assert xcoms.pull("flaky", -1, "return_value") == (True, 2)

    found, reached = xcoms.pull("reach_out", -1, "return_value")
    assert found
    # the tenant's secret, read with the tenant's credentials, masked in the log
    assert reached["key_length"] == len("s3cr3t-value")
    assert ("the key is ***", "info", "stdout") in logs.events("reach_out")
    # boto3 in the child signs with the tenant's keys, and STS says whose they are
    assert reached["access_key"] == issued[-1] != "testing"
    assert reached["arn"].startswith("arn:aws:sts::123456789012:assumed-role/slipstream-task-code/")
    env = reached["env"]
    assert env["AWS_ACCESS_KEY_ID"] == issued[-1]
    assert "testing" not in env.values()
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_LAMBDA_RUNTIME_API",
        "SLIPSTREAM_TABLE_NAME",
        "AWS_PROFILE",
    ):
        assert name not in env
    assert env["SLIPSTREAM_STAGE"] == "test"
    # the keys came over the channel, after the child made itself non-dumpable:
    # its exec environment (/proc/<pid>/environ) never held them
    assert reached["exec_environ_has_keys"] is False
    assert reached["child_dumpable"] is False
    # The worker made itself non-dumpable before its first child. As root (this
    # sandbox), the kernel still lets a child read /proc/<parent>/environ
    # (CAP_SYS_PTRACE); an unprivileged child gets PermissionError.
    assert is_dumpable() is False
    if os.geteuid() != 0:
        assert reached["parent_environ"] == "denied"
    # the bundle was extracted into the tenant's own folder, nowhere else
    assert [p.name for p in (tmp_path / "cache" / "isolated").iterdir()] == ["tenant-acme"]
    # one child per try, each with freshly assumed credentials
    assert len(issued) == 6
    assert json.dumps(reached["env"]).count("s3cr3t") == 0
