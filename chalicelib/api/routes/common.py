"""Look-ups every resource needs: the caller's view of a DAG, a run, a spec."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.api import deps
from chalicelib.api.datamodels.common import DagVersionResponse, stable_uuid
from chalicelib.api.errors import NotFound
from chalicelib.api.routing import Call
from chalicelib.core.spec import DagSpec
from chalicelib.store.base import DagRecord
from chalicelib.store.catalog import StoredRun, VersionRow, tenant_of

BUNDLE_NAME = "dags-folder"
"""The project's dags/ and operators/ folders make one bundle, as Airflow's default
``dags-folder`` bundle does; its version is the git commit it was deployed from."""


MAX_KEY_BYTES = 1024
"""DynamoDB's limit for a sort key; partition keys may be twice that. A DAG id is
both in some table, so no stored one is longer."""


def visible_dag(call: Call, dag_id: str) -> DagRecord:
    """The DAG if it exists in the caller's tenant; 404 otherwise (never 403)."""
    if not dag_id or len(dag_id.encode()) > MAX_KEY_BYTES:
        # No DAG has such an id, and DynamoDB refuses the key outright (a 500
        # schemathesis found through a body's empty dag_id).
        raise NotFound(f"The DAG with dag_id: `{dag_id[:250]}` was not found")
    record = deps.catalog().store.get_dag(dag_id)
    if record is None or tenant_of(record) != call.who.tenant:
        raise NotFound(f"The DAG with dag_id: `{dag_id}` was not found")
    return record


def summary_of(record: DagRecord) -> dict[str, Any]:
    return json.loads(record.summary) if record.summary else {}


def current_spec(record: DagRecord) -> DagSpec:
    if not record.current_version:
        raise NotFound(f"The DAG {record.dag_id} has no deployed version")
    return deps.specs().get(record.dag_id, record.current_version)


def visible_run(call: Call, dag_id: str, run_id: str) -> tuple[DagRecord, StoredRun]:
    record = visible_dag(call, dag_id)
    stored = deps.catalog().get_run(dag_id, run_id)
    if stored is None:
        raise NotFound(f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found")
    return record, stored


def version_response(row: VersionRow, display_name: str) -> DagVersionResponse:
    return DagVersionResponse(
        id=stable_uuid("dag_version", row.dag_id, row.version),
        version_number=row.number,
        dag_id=row.dag_id,
        bundle_name=BUNDLE_NAME,
        bundle_version=row.git_commit,
        created_at=row.created_at,
        dag_display_name=display_name,
    )


class VersionLookup:
    """Version rows by hash, read once per request (runs share their versions)."""

    def __init__(self, dag_id: str, display_name: str):
        self.dag_id = dag_id
        self.display_name = display_name
        self._rows: dict[str, DagVersionResponse | None] = {}

    def __call__(self, version: str) -> DagVersionResponse | None:
        if version not in self._rows:
            row = deps.catalog().version_row(self.dag_id, version) if version else None
            self._rows[version] = None if row is None else version_response(row, self.display_name)
        return self._rows[version]
