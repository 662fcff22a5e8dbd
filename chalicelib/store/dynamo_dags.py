"""The DAG catalog on DynamoDB: DAG items, their versions and the specs
that are too large for an item (kept in S3, content-addressed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.store.base import DagRecord, DagVersionRecord, StoreError
from chalicelib.store.dynamo_base import DynamoStoreBase
from chalicelib.store.models import DEFAULT_TENANT, DUE_SHARD, VERSION_COUNTER
from chalicelib.store.writes import CONDITION_FAILED


class DynamoDagCatalog(DynamoStoreBase):
    def upsert_dag(self, record: DagRecord) -> None:
        due = record.active and not record.paused and record.next_due_at is not None
        self.models.dag(
            record.dag_id,
            ver=record.current_version,
            paused=record.paused,
            active=record.active,
            due_shard=DUE_SHARD if due else None,  # sparse: only schedulable DAGs are indexed
            due_at=record.next_due_at,
            tenant=record.tenant,
            tn=record.tenant or DEFAULT_TENANT,
            li_start=record.last_interval_start,
            li_end=record.last_interval_end,
            summ=record.summary,
        ).save()

    def get_dag(self, dag_id: str) -> DagRecord | None:
        try:
            item = self.models.dag.get(dag_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._dag_record(item)

    @staticmethod
    def _dag_record(item: Any) -> DagRecord:
        return DagRecord(
            dag_id=item.dag_id,
            current_version=item.ver,
            paused=bool(item.paused),
            active=bool(item.active),
            next_due_at=item.due_at,
            tenant=item.tenant,
            last_interval_start=item.li_start,
            last_interval_end=item.li_end,
            summary=item.summ,
        )

    def due_dags(self, now: dt.datetime) -> list[str]:
        model = self.models.dag
        return [item.dag_id for item in model.due.query(DUE_SHARD, model.due_at <= now)]

    def put_dag_version(self, record: DagVersionRecord) -> bool:
        model = self.models.dag_version
        spec: str | None = record.spec_json
        spec_key: str | None = None
        if len(record.spec_json.encode()) > self.settings.large_value_bytes:
            spec_key = f"specs/{record.dag_id}/{record.version}.json"
            # Content-addressed, so a repeated upload writes the same bytes.
            self._s3_client().put_object(
                Bucket=self.settings.bucket, Key=spec_key, Body=record.spec_json.encode()
            )
            spec = None
        if self._version_exists(record.dag_id, record.version):
            return False
        item = model(
            record.dag_id,
            record.version,
            spec=spec,
            spec_key=spec_key,
            bundle_key=record.bundle_key,
            created_at=record.created_at,
            git_commit=record.git_commit,
            vnum=self._next_version_number(record.dag_id),
        )
        try:
            item.save(condition=model.ver.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise StoreError(f"cannot store version {record.version} of {record.dag_id}") from exc
        return True

    def _version_exists(self, dag_id: str, version: str) -> bool:
        model = self.models.dag_version
        return bool(
            list(model.query(dag_id, model.ver == version, attributes_to_get=["ver"], limit=1))
        )

    def _next_version_number(self, dag_id: str) -> int:
        """Airflow numbers a DAG's versions 1, 2, ...; a deploy killed after this
        leaves a gap, never a duplicate (the counter only moves up)."""
        model = self.models.dag_version
        counter = model(dag_id, VERSION_COUNTER)
        counter.update(actions=[model.n.add(1)])
        return int(counter.n)

    def get_dag_version(self, dag_id: str, version: str) -> DagVersionRecord | None:
        try:
            item = self.models.dag_version.get(dag_id, version, consistent_read=True)
        except DoesNotExist:
            return None
        spec_json = item.spec
        if spec_json is None:
            body = self._s3_client().get_object(Bucket=self.settings.bucket, Key=item.spec_key)
            spec_json = body["Body"].read().decode()
        return DagVersionRecord(
            dag_id=item.dag_id,
            version=item.ver,
            spec_json=spec_json,
            created_at=item.created_at,
            bundle_key=item.bundle_key,
            git_commit=item.git_commit,
            number=None if item.vnum is None else int(item.vnum),
        )

    def _s3_client(self) -> Any:
        if self._s3 is None:
            import boto3  # type: ignore[import-untyped]

            self._s3 = boto3.client(
                "s3", region_name=self.settings.region, endpoint_url=self.settings.endpoint_url
            )
        return self._s3
