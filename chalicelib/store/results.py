"""Task results (XCom) of one run in DynamoDB, large ones in S3 behind a pointer.

One item per (task, map index, key) under the run's partition, so a mapped
fan-in reads its upstream's values with one Query in map-index order, and a
new try clears only its own instance's items. Values are stored in their JSON
form (chalicelib.core.values), the same form the in-memory store keeps.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.values import decode
from chalicelib.runtime.xcom import encode_for_xcom
from chalicelib.store.models import instance_pk, instance_sk
from chalicelib.store.settings import StoreSettings

INLINE_LIMIT_BYTES = 64_000
"""Results larger than this go to S3; DynamoDB items stop at 400 KB."""


def build_result_model(settings: StoreSettings) -> type[Any]:
    class ResultModel(Model):
        class Meta:
            table_name = settings.table_name("results")
            region = settings.region
            host = settings.endpoint_url

        pk = UnicodeAttribute(hash_key=True)  # dag_id#run_id
        sk = UnicodeAttribute(range_key=True)  # task_id#index#key
        val = UnicodeAttribute(null=True)  # JSON
        s3_key = UnicodeAttribute(null=True)

    return ResultModel


def _sk(task_id: str, map_index: int, key: str) -> str:
    return f"{instance_sk(task_id, map_index)}#{key}"


class DynamoXComStore:
    """Implements chalicelib.runtime.xcom.XComStore for one run."""

    def __init__(
        self,
        dag_id: str,
        run_id: str,
        *,
        model: type[Any],
        s3_client: Any = None,
        bucket: str | None = None,
    ):
        self.pk = instance_pk(dag_id, run_id)
        self.model = model
        self.s3 = s3_client
        self.bucket = bucket

    def push(self, task_id: str, map_index: int, key: str, value: Any) -> None:
        self.push_encoded(task_id, map_index, key, encode_for_xcom(value, task_id=task_id, key=key))

    def push_encoded(self, task_id: str, map_index: int, key: str, encoded: Any) -> None:
        text = json.dumps(encoded, separators=(",", ":"))
        item = self.model(self.pk, _sk(task_id, map_index, key))
        if len(text.encode()) > INLINE_LIMIT_BYTES and self.s3 is not None and self.bucket:
            digest = hashlib.sha256(text.encode()).hexdigest()
            s3_key = f"results/{self.pk}/{task_id}/{map_index}/{key}/{digest}.json"
            self.s3.put_object(Bucket=self.bucket, Key=s3_key, Body=text.encode())
            item.s3_key = s3_key
        else:
            item.val = text
        item.save()

    def pull(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        found, encoded = self.pull_encoded(task_id, map_index, key)
        return found, decode(encoded) if found else None

    def pull_encoded(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        try:
            item = self.model.get(self.pk, _sk(task_id, map_index, key), consistent_read=True)
        except self.model.DoesNotExist:
            return False, None
        return True, self._load(item)

    def pull_mapped(self, task_id: str, key: str) -> list[Any]:
        values: list[tuple[int, Any]] = []
        prefix = f"{task_id}#"
        for item in self.model.query(
            self.pk, self.model.sk.startswith(prefix), consistent_read=True
        ):
            rest = item.sk[len(prefix) :]
            index_text, _, item_key = rest.partition("#")
            if item_key != key or index_text == "-1" or not index_text.isdigit():
                continue
            values.append((int(index_text), self._load(item)))
        values.sort(key=lambda pair: pair[0])
        return [decode(v) for _, v in values]

    def clear(self, task_id: str, map_index: int) -> None:
        prefix = f"{instance_sk(task_id, map_index)}#"
        for item in self.model.query(self.pk, self.model.sk.startswith(prefix)):
            item.delete()

    def _load(self, item: Any) -> Any:
        if item.s3_key:
            body = self.s3.get_object(Bucket=self.bucket, Key=item.s3_key)["Body"].read()
            return json.loads(body)
        return json.loads(item.val) if item.val is not None else None
