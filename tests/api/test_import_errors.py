"""``/importErrors`` through Airflow's own client: a refused deploy's files, per tenant,
by either deploy path (straight to the stores, or ``POST /slipstream/deploys``), and
the DAG list's ``has_import_errors``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_client.client import DAGApi, ImportErrorApi
from airflow_client.client.exceptions import ApiException

from chalicelib.cli.deploy_remote import deploy_body
from chalicelib.deploy.deployer import plan_deploy
from tests.api.served import ACME_DAG, Served, deploy_tenant, tenant_project
from tests.deploy.projects import imports_restored


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[Path]:
    with imports_restored():
        yield tenant_project(tmp_path / "acme")


def test_a_refused_deploy_lists_its_files_for_its_tenant_only(served: Served, acme: Path) -> None:
    (acme / "dags" / "acme_only.py").write_text(
        ACME_DAG.replace('tags=["acme"]):', 'tags=["acme"]')
    )
    assert not deploy_tenant(acme, "acme").ok

    with served.airflow_client(role="viewer", tenant="acme") as client:
        page = ImportErrorApi(client).get_import_errors(limit=10, offset=0, order_by=["-id"])
        assert page.total_entries == 1
        error = page.import_errors[0]
        assert error.filename == "dags/acme_only.py" and error.bundle_name == "dags"
        assert "acme_only.py:" in error.stack_trace
        one = ImportErrorApi(client).get_import_error(error.import_error_id)
        assert one == error
        with pytest.raises(ApiException) as missing:
            ImportErrorApi(client).get_import_error(error.import_error_id + 1)
        assert missing.value.status == 404
        dags = DAGApi(client).get_dags().dags
        assert [(d.dag_id, d.has_import_errors) for d in dags] == [("acme_only", True)]
        overview = served.call("GET", "/slipstream/dags", role="viewer", tenant="acme").json()
        assert [d["has_import_errors"] for d in overview["dags"]] == [True]
    with served.airflow_client(role="viewer", tenant="default") as client:
        assert ImportErrorApi(client).get_import_errors().total_entries == 0
        assert ImportErrorApi(client).get_import_errors().import_errors == []
        with pytest.raises(ApiException) as other_tenant:
            ImportErrorApi(client).get_import_error(error.import_error_id)
        assert other_tenant.value.status == 404
        assert not any(d.has_import_errors for d in DAGApi(client).get_dags(limit=100).dags)

    (acme / "dags" / "acme_only.py").write_text(ACME_DAG)
    assert deploy_tenant(acme, "acme").ok
    assert served.call("GET", "/importErrors", role="viewer", tenant="acme").json() == {
        "import_errors": [],
        "total_entries": 0,
    }


def test_a_deploy_the_api_refuses_is_recorded_and_the_next_success_clears_it(
    served: Served, acme: Path
) -> None:
    # tenant default may not take over acme's DAG: the API refuses the whole deploy
    (acme / "dags" / "taken.py").write_text(ACME_DAG)
    plan = plan_deploy([str(acme / "dags")], bundle_root=str(acme))
    assert plan.ok
    refused = served.call(
        "POST", "/slipstream/deploys", role="op", json=deploy_body(plan, None, False)
    )
    assert refused.status_code == 422, refused.text

    listed = served.call("GET", "/importErrors", role="viewer").json()
    assert [e["filename"] for e in listed["import_errors"]] == ["dags/taken.py"]
    assert "another tenant" in listed["import_errors"][0]["stack_trace"]

    (acme / "dags" / "taken.py").write_text(ACME_DAG.replace('"acme_only"', '"default_owned"'))
    plan = plan_deploy([str(acme / "dags")], bundle_root=str(acme))
    accepted = served.call(
        "POST", "/slipstream/deploys", role="op", json=deploy_body(plan, None, False)
    )
    assert accepted.status_code == 201, accepted.text
    assert served.call("GET", "/importErrors", role="viewer").json()["total_entries"] == 0


def test_paging_ordering_and_bad_input(served: Served) -> None:
    assert served.call("GET", "/importErrors", role=None).status_code in (401, 403)
    assert served.call("GET", "/importErrors/abc", role="viewer").status_code == 400
    assert (
        served.call(
            "GET", "/importErrors", role="viewer", params={"order_by": "dag_id"}
        ).status_code
        == 422
    )
    assert (
        served.call("GET", "/importErrors", role="viewer", params={"limit": -1}).status_code == 422
    )
