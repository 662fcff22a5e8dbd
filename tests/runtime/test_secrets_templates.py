"""``conn`` and ``var`` in templates, the try's tenant, and masking of what a try logs."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.states import TaskState
from chalicelib.runtime import InMemoryXComStore, TryRequest, execute_try
from chalicelib.runtime.context import build_context
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.templating import TemplateRenderError, render_value, template_env
from chalicelib.sdk import DAG, BaseHook, task
from chalicelib.secrets import Connection, lookup, secret_masker
from chalicelib.secrets.cached import CachedStoreBackend
from chalicelib.secrets.connection_store import ConnectionStore
from chalicelib.secrets.variable_store import VariableRecord, VariableStore
from operators.python import PythonOperator
from tests.runtime.runtime_doubles import Clock, FakeDag, FakeOperator, scheduled_run

UTC = dt.timezone.utc
PREFIX = "slipstream/test"


class Reads:
    """Counts the store reads DAG code triggers."""

    def __init__(self) -> None:
        self.count = 0

    def seen(self, **_: Any) -> None:
        self.count += 1


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AIRFLOW_CONN_PG", "AIRFLOW_VAR_BUCKET", "AIRFLOW_VAR_CFG"):
        monkeypatch.delenv(name, raising=False)
    secret_masker.clear()
    yield
    secret_masker.clear()
    lookup.install_backend(None)


@pytest.fixture
def reads() -> Iterator[Reads]:
    counter = Reads()
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        ssm = boto3.client("ssm", region_name="us-east-1")
        for client in (sm, ssm):
            client.meta.events.register("before-call", counter.seen)
        ConnectionStore(sm, PREFIX).put(
            "acme",
            Connection(conn_id="pg", conn_type="postgres", host="db.acme", password="acme-pw-1"),
            create_only=True,
        )
        VariableStore(ssm, PREFIX).put(
            "acme", VariableRecord("cfg", '{"table": {"name": "sales"}}'), create_only=True
        )
        lookup.install_backend(CachedStoreBackend(sm, ssm, PREFIX, max_age=60))
        counter.count = 0
        yield counter


def render(template: str) -> Any:
    dag = FakeDag()
    op = FakeOperator("t", dag)
    run = scheduled_run(dag.dag_id, dt.datetime(2024, 1, 31, tzinfo=UTC))
    ti = RuntimeTaskInstance(
        dag_id=dag.dag_id,
        task_id="t",
        run_id=run.run_id,
        map_index=-1,
        try_number=1,
        max_tries=0,
        task=op,
        xcoms=InMemoryXComStore(),
        is_mapped=lambda _: False,
    )
    context = build_context(dag, op, run, ti, {})
    return render_value(template, context, template_env(dag))


def test_conn_and_var_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://u:pw@env-host:5432/db")
    monkeypatch.setenv("AIRFLOW_VAR_BUCKET", "s3://landing")
    monkeypatch.setenv("AIRFLOW_VAR_CFG", '{"table": {"name": "sales"}}')

    assert render("{{ conn.pg.host }}:{{ conn.pg.port }}") == "env-host:5432"
    assert render("{{ var.value.bucket }}") == "s3://landing"
    assert render("{{ var.json.cfg.table.name }}") == "sales"


def test_defaults_through_get() -> None:
    lookup.install_backend(_EmptyBackend())

    assert render("{{ var.value.get('nope', 'fallback') }}") == "fallback"
    assert render("{{ var.json.get('nope', {'a': 1}).a }}") == "1"
    assert render("{{ conn.get('nope') }}") == "None"


def test_a_missing_variable_fails_the_render_naming_where_it_looked() -> None:
    lookup.install_backend(_EmptyBackend())

    with pytest.raises((TemplateRenderError, KeyError), match="AIRFLOW_VAR_NOPE"):
        render("{{ var.value.nope }}")


def test_building_the_context_reads_nothing(reads: Reads) -> None:
    assert render("{{ ds }}") == "2024-01-31"
    assert reads.count == 0


def test_store_values_in_templates_for_the_tries_tenant(reads: Reads) -> None:
    with lookup.tenant_scope("acme"):
        assert render("{{ conn.pg.host }} {{ var.json.cfg.table.name }}") == "db.acme sales"
        assert render("{{ conn.pg.host }}") == "db.acme"
    assert reads.count == 2  # one secret, one parameter: the second render is cached


def test_a_try_reads_its_tenants_connection_and_masks_it_in_logs_and_errors(
    reads: Reads, caplog: pytest.LogCaptureFixture
) -> None:
    with DAG("secrets_dag", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        PythonOperator(
            task_id="templated",
            python_callable=lambda host: host,
            op_kwargs={"host": "{{ conn.pg.host }}"},
        )

        @task
        def leaky() -> None:
            conn = BaseHook.get_connection("pg")
            logging.getLogger("slipstream.task").info("using password %s", conn.password)
            raise RuntimeError(f"login failed with {conn.password}")

        leaky()

    run = scheduled_run(dag.dag_id, dt.datetime(2024, 1, 1, tzinfo=UTC))
    xcoms = InMemoryXComStore()

    def run_task(task_id: str, tenant: str | None) -> Any:
        request = TryRequest(dag=dag, spec=dag.to_spec(), run=run, task_id=task_id, tenant=tenant)
        return execute_try(request, xcoms, clock=Clock())

    with caplog.at_level(logging.INFO, logger="slipstream.task"):
        assert run_task("templated", "acme").state is TaskState.SUCCESS
        failed = run_task("leaky", "acme")
        other_tenant = run_task("templated", "globex")

    assert xcoms.pull("templated", -1, "return_value") == (True, "db.acme")
    assert failed.state is TaskState.FAILED
    assert "acme-pw-1" not in (failed.error or "") + (failed.traceback or "")
    assert "login failed with ***" in (failed.error or "")
    assert "acme-pw-1" not in caplog.text
    assert "using password ***" in caplog.text
    assert other_tenant.state is TaskState.FAILED
    assert "slipstream/test/globex/connections/pg" in (other_tenant.error or "")
    assert lookup.current_tenant.get() == "default"


class _EmptyBackend:
    def connection_location(self, tenant: str, conn_id: str) -> str:
        return "nowhere"

    def read_connection(self, tenant: str, conn_id: str) -> None:
        return None

    def variable_location(self, tenant: str, key: str) -> str:
        return "nowhere"

    def read_variable(self, tenant: str, key: str) -> None:
        return None
