"""Per-DAG container roles: a DAG may run its ECS tasks only as a role of its own
tenant (``role/slipstream/<stage>/<tenant>/``) or as the stage's default worker
task role; deploy refuses any other with file:line and writes nothing, and
dispatch refuses it again for specs deployed before the check."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.messages import RunSnapshot, WorkerMessage
from chalicelib.core.spec import ExecutorSpec
from chalicelib.core.task_roles import DEFAULT_TENANT, task_role_refusal, tenant_role_path
from chalicelib.deploy.bundle_store import LocalBundleStore
from chalicelib.deploy.deployer import deploy
from chalicelib.executors.base import DispatchError
from chalicelib.executors.ecs_executor import EcsExecutor
from chalicelib.executors.settings import ExecutorSettings
from chalicelib.store.memory import InMemoryStateStore
from chalicelib.store.models import DEFAULT_TENANT as STORE_DEFAULT_TENANT
from tests.deploy.projects import NOW, Project
from tests.sdk.dagfiles import line_of

ACCOUNT = "123456789012"
DEFAULT_ROLE = (
    f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/slipstream-dev-infra-WorkerTaskRole-AB12"
)
ACME_ROLE = f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/acme/etl-runner"
GLOBEX_ROLE = f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/globex/etl-runner"

ROLE_DAG = """
from chalicelib.sdk import DAG, ExecutorConfig
from operators.empty import EmptyOperator

with DAG("containers", schedule=None):
    EmptyOperator(task_id="plain")
    EmptyOperator(  # the role task
        task_id="as_role",
        executor=ExecutorConfig("ecs", image="repo/etl:1", task_role_arn="{role}"),
    )
"""


def test_the_default_tenant_is_the_stores() -> None:
    assert DEFAULT_TENANT == STORE_DEFAULT_TENANT


@pytest.mark.parametrize(
    ("role", "tenant", "allowed"),
    [
        (ACME_ROLE, "acme", True),
        (GLOBEX_ROLE, "acme", False),  # another tenant's role
        (f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/acme/team/x", "acme", False),  # deeper path
        (f"arn:aws:iam::{ACCOUNT}:role/slipstream/prod/acme/etl-runner", "acme", False),
        (f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/other-worker", "acme", False),
        (f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/default/etl", None, True),
        (f"arn:aws:iam::{ACCOUNT}:role/slipstream/dev/default/etl", "acme", False),
        ("arn:aws:iam::999999999999:role/slipstream/dev/acme/etl-runner", "acme", False),
        (DEFAULT_ROLE, "acme", True),
        ("etl-runner", "acme", False),
    ],
)
def test_a_role_is_allowed_only_under_its_tenant_path_or_as_the_default(
    role: str, tenant: str | None, allowed: bool
) -> None:
    refusal = task_role_refusal(role, stage="dev", tenant=tenant, default_role_arn=DEFAULT_ROLE)
    assert (refusal is None) is allowed, refusal
    if not allowed:
        assert repr(role) in str(refusal)


def test_the_refusal_names_the_path_to_create_the_role_under() -> None:
    refusal = task_role_refusal(GLOBEX_ROLE, stage="dev", tenant="acme")
    assert refusal is not None and tenant_role_path("dev", "acme") in refusal
    assert tenant_role_path("dev", None) == "/slipstream/dev/default/"


def _deploy(project: Project, tmp_path: Any, role: str, tenant: str | None) -> Any:
    path = project.write("dags/containers.py", ROLE_DAG.replace("{role}", role))
    store = InMemoryStateStore()
    report = deploy(
        [str(project.dags)],
        store=store,
        bundles=LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache"),
        bundle_root=str(project.root),
        now=NOW,
        stage="dev",
        tenant=tenant,
    )
    return report, store, path


def test_deploy_refuses_a_dag_naming_another_tenants_role_at_its_line(
    project: Project, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPSTREAM_TASK_ROLE_ARN", DEFAULT_ROLE)
    report, store, path = _deploy(project, tmp_path, GLOBEX_ROLE, "acme")
    assert not report.ok
    (problem,) = report.problems
    assert problem.task_id == "as_role" and problem.dag_id == "containers"
    assert problem.line == line_of(path, "# the role task")
    assert str(problem).startswith(f"{problem.file}:{problem.line}: ")
    assert "/slipstream/dev/acme/" in problem.message
    assert store.get_dag("containers") is None and store.get_dag("hello") is None


@pytest.mark.parametrize(("role", "tenant"), [(ACME_ROLE, "acme"), (DEFAULT_ROLE, "acme")])
def test_deploy_accepts_the_tenants_own_role_and_the_stage_default(
    project: Project, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, role: str, tenant: str
) -> None:
    monkeypatch.setenv("SLIPSTREAM_TASK_ROLE_ARN", DEFAULT_ROLE)
    report, store, _ = _deploy(project, tmp_path, role, tenant)
    assert report.ok, [str(p) for p in report.problems]
    assert store.get_dag("containers") is not None


class RecordingEcs:
    """An ECS client that records calls and starts every task it is asked to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_task_definition(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_task_definition", kwargs))
        arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{kwargs['taskDefinition']}:1"
        return {"taskDefinition": {"taskDefinitionArn": arn}}

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("run_task", kwargs))
        return {"tasks": [{"taskArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/c/1"}]}


def _message(tenant: str | None) -> WorkerMessage:
    run = RunSnapshot.model_validate(
        {
            "run_type": "manual",
            "logical_date": None,
            "data_interval_start": None,
            "data_interval_end": None,
            "run_after": NOW,
            "version": "v" * 64,
            "conf": {},
            "state": "running",
            "tenant": tenant,
        }
    )
    return WorkerMessage(
        dag_id="containers",
        run_id="manual__1",
        task_id="as_role",
        map_index=-1,
        try_number=1,
        version="v" * 64,
        run=run,
    )


def _executor(client: RecordingEcs) -> EcsExecutor:
    settings = ExecutorSettings(
        stage="dev",
        subnets=["subnet-1"],
        security_groups=["sg-1"],
        default_image="repo/worker:1",
        task_role_arn=DEFAULT_ROLE,
    )
    return EcsExecutor(client, settings, {})


def test_dispatch_refuses_another_tenants_role_before_calling_ecs() -> None:
    client = RecordingEcs()
    spec = ExecutorSpec(kind="ecs", task_role_arn=GLOBEX_ROLE)
    with pytest.raises(DispatchError, match="not a role of tenant 'acme'") as raised:
        _executor(client).dispatch(_message("acme"), spec)
    assert not raised.value.transient
    assert client.calls == []


def test_dispatch_passes_the_tenants_own_role_to_run_task() -> None:
    client = RecordingEcs()
    _executor(client).dispatch(_message("acme"), ExecutorSpec(kind="ecs", task_role_arn=ACME_ROLE))
    (run,) = [kwargs for name, kwargs in client.calls if name == "run_task"]
    assert run["overrides"]["taskRoleArn"] == ACME_ROLE
