"""The API served as ``slipstream dev`` serves it, for tests: the local stack on
moto, the repository's example DAGs deployed in tenant ``default``, one DAG in
tenant ``acme``, the Chalice app on a free port, and a key per tenant and role.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.deploy.deployer import DeployReport, deploy
from chalicelib.local.api_server import ApiServer
from chalicelib.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("viewer", "user", "op", "admin")
TENANTS = ("default", "acme")

ACME_DAG = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("acme_only", schedule="@daily", start_date=dt.datetime(2024, 1, 1), tags=["acme"]):
    EmptyOperator(task_id="noop")
"""


@dataclass
class Served:
    url: str
    stack: LocalStack
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def headers(self, role: str = "admin", tenant: str = "default") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[(tenant, role)]}"}

    def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        tenant: str = "default",
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers.update(self.headers(role, tenant))
        return requests.request(
            method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs
        )

    def airflow_client(self, role: str = "admin", tenant: str = "default") -> Any:
        import airflow_client.client as client

        config = client.Configuration(host=self.url, access_token=self.keys[(tenant, role)])
        return client.ApiClient(config)


def _fresh_moto() -> None:
    """moto's backends belong to the process, and every embedded moto server in it
    serves the same ones: without a reset, an API served for one test module would
    see the keys, DAGs and runs left by the module served before it."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@contextmanager
def serve(tmp_path: Path) -> Iterator[Served]:
    _fresh_moto()
    with LocalStack(workers=2, tick_seconds=3600) as stack:
        report = stack.deploy(ROOT)
        assert report.ok, report.problems
        acme = tenant_project(tmp_path / "acme")
        (acme / "dags" / "acme_only.py").write_text(ACME_DAG)
        acme_report = deploy_tenant(acme, "acme")
        assert acme_report.ok, acme_report.problems
        server = ApiServer(port=0).start()
        try:
            served = Served(url=server.url, stack=stack)
            now = dt.datetime.now(dt.UTC)
            for tenant in TENANTS:
                for role in ROLES:
                    _, text = deps.api_keys().create(
                        tenant=tenant, role=role, now=now, name=f"{tenant}-{role}"
                    )
                    served.keys[(tenant, role)] = text
            yield served
        finally:
            server.stop()


def deploy_tenant(project: Path, tenant: str) -> DeployReport:
    """Deploy ``project``'s dags/ straight to the served stack's stores for ``tenant``."""
    return deploy(
        [str(project / "dags")],
        store=wiring.state_store(),
        bundles=wiring.bundle_store(),
        bundle_root=str(project),
        now=wiring.utc_now(),
        stage="local",
        tenant=tenant,
    )


def tenant_project(root: Path) -> Path:
    """An empty project at ``root`` (its dags/ to fill) using the repository's operators."""
    (root / "dags").mkdir(parents=True)
    (root / "operators").symlink_to(ROOT / "operators")
    return root


def deploy_dags(served: Served, project: Path, file_name: str, source: str) -> None:
    """Deploy one more DAG file (with the repository's operators) to tenant
    ``default`` of a served stack, for a module that needs DAGs of its own."""
    (project / "dags").mkdir()
    (project / "dags" / file_name).write_text(source)
    (project / "operators").symlink_to(ROOT / "operators")
    report = served.stack.deploy(project)
    assert report.ok, report.problems
