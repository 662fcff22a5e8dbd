"""schemathesis against the served API: generated requests, valid and invalid,
for every documented operation, sent with the admin key, must never get a 5xx,
and every answer must match the OpenAPI document. ``make schemathesis`` runs
just this module.

The schema is read from the served ``/api/v2/openapi.json``, as an outside
client would read it. schemathesis' own pytest loader (``from_fixture``) does
not run under pytest 9 (it sets a node attribute pytest 9 removed), so each
operation is one pytest case driving hypothesis with schemathesis' strategy.

The stack is this module's own (``served`` is module-scoped): whatever the
generated writes do, even a bulk pause of every DAG, stays here. Generation is
derandomized so that a failure reproduces on the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from chalicelib.api.routes import ALL_BLUEPRINTS  # noqa: F401  (fills OPERATIONS)
from chalicelib.api.routing import OPERATIONS
from tests.api.served import Served

EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]
REQUESTS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
LABELS = [f"{op.method.upper()} {op.path}" for op in OPERATIONS]


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/api/v2/openapi.json", timeout=30)


@pytest.fixture(scope="module")
def known(served: Served) -> dict[str, str]:
    """Ids of real objects, so that generated requests also reach past the 404s.

    Deletes never get them: a delete that worked would leave the later
    operations nothing to find (and revoking a key given here is harmless).
    """
    run = served.call(
        "POST",
        "/dags/mapped_fanout/dagRuns",
        json={"dag_run_id": "st-known", "conf": {"partitions": 2}},
    )
    assert run.status_code == 200, run.text
    served.stack.wait_for_run("mapped_fanout", "st-known", timeout=120)
    for path, body in (
        ("/connections", {"connection_id": "st_conn", "conn_type": "http"}),
        ("/variables", {"key": "st_var", "value": "x"}),
        ("/slipstream/keys", {"role": "viewer", "name": "st-viewer"}),
    ):
        answer = served.call("POST", path, json=body)
        assert answer.status_code == 201, answer.text
    events = served.call("GET", "/eventLogs").json()["event_logs"]
    return {
        "dag_id": "mapped_fanout",
        "dag_run_id": "st-known",
        "task_id": "process",
        "map_index": "0",
        "try_number": "1",
        "task_try_number": "1",
        "xcom_key": "return_value",
        "version_number": "1",
        "pool_name": "default_pool",
        "connection_id": "st_conn",
        "variable_key": "st_var",
        "event_log_id": str(events[0]["event_log_id"]),
        "key_id": answer.json()["key_id"],
    }


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    total = sum(REQUESTS.values())
    print(f"\nschemathesis: {len(REQUESTS)} operations, {total} requests, {dict(STATUSES)}")


@pytest.mark.parametrize("label", LABELS)
def test_operation_conforms(
    label: str, api_schema: schemathesis.BaseSchema, served: Served, known: dict[str, str]
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is missing from the served document"
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    names = [p.name for p in operation.path_parameters]
    if names and operation.method.upper() != "DELETE":
        fixed = {name: known[name] for name in names if name in known}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    cases = st.one_of(strategies)
    admin = served.headers("admin")

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        REQUESTS[label] += 1
        response = case.call_and_validate(
            base_url=served.url, headers=admin, checks=CHECKS, timeout=30
        )
        STATUSES[response.status_code] += 1

    check()


DEEP = '{"conf": {"a": ' + "[" * 3000 + "]" * 3000 + "}}"
FOUND = [
    # Each once answered 500: an aware date with no UTC form, a date the
    # schedule cannot step from, a lone surrogate that could be stored but
    # not answered, nesting that overflowed the parser's recursion, NaN.
    (
        "POST",
        "/slipstream/keys",
        '{"role": "viewer", "expires_at": "9999-12-31T23:59:59-23:59"}',
        422,
    ),
    ("GET", "/dags/etl_hourly/dagRuns?run_after_gte=0001-01-01T00:00:00%2B01:00", None, 422),
    ("POST", "/dags/etl_hourly/dagRuns", '{"logical_date": "9999-12-31T23:59:59Z"}', 422),
    ("POST", "/dags/etl_hourly/dagRuns", '{"logical_date": "0001-01-01T00:00:00Z"}', 422),
    ("POST", "/variables", '{"key": "v", "value": "\\ud800"}', 400),
    ("POST", "/dags/etl_hourly/dagRuns", DEEP, 400),
    ("POST", "/dags/etl_hourly/dagRuns", '{"conf": {"a": NaN}}', 400),
    # An empty DAG id in a body reached DynamoDB as an empty key.
    (
        "POST",
        "/backfills",
        '{"dag_id": "", "from_date": "2000-01-01T00:00:00Z", "to_date": "2000-01-01T00:00:00Z"}',
        404,
    ),
    # Numbers DynamoDB cannot hold (38 digits) are refused before the store.
    ("POST", "/pools", '{"name": "big", "slots": 1' + "0" * 40 + "}", 422),
    ("POST", "/connections", '{"connection_id": "c", "conn_type": "x", "port": 70000}', 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), FOUND)
def test_inputs_that_once_made_a_500(
    served: Served, method: str, path: str, body: str | None, status: int
) -> None:
    answer = served.call(method, path, data=body)
    assert answer.status_code == status, answer.text
    assert "detail" in answer.json()
