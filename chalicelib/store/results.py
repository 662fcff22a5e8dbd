"""Task results (XCom) of one run in DynamoDB, large ones in S3 behind a pointer.

One item per (task, map index, key) under the run's partition, so a mapped
fan-in reads its upstream's values with one Query in map-index order, and a
new try clears only its own instance's items. Values are stored in their JSON
form (chalicelib.core.values), the same form the in-memory store keeps.

A list, tuple or dict result over one page (a few KB) is stored as pages of
consecutive elements, each keyed by its first index, behind a marker item.
A mapped instance reads only the page holding its element: one Query for the
greatest page start at or below its index, one read unit, where reading a
10,000-element list whole would cost thirteen on every one of its tries.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.aws.retries import pynamodb_retry_attempts
from chalicelib.core.values import TUPLE_TAG, decode
from chalicelib.runtime.xcom import decode_item, encode_for_xcom, indexable
from chalicelib.store.models import instance_pk, instance_sk
from chalicelib.store.settings import StoreSettings

INLINE_LIMIT_BYTES = 64_000
"""Results larger than this go to S3; DynamoDB items stop at 400 KB."""

PAGE_BYTES = 3_500
"""A page's JSON stays under this (and its item under 4 KB: one read unit)
unless one element alone is bigger; it then has a page of its own."""

PAGE_LIMIT_BYTES = 300_000
"""A value with an element bigger than this is not paged (DynamoDB items stop at 400 KB)."""


def build_result_model(settings: StoreSettings) -> type[Any]:
    class ResultModel(Model):
        class Meta:
            table_name = settings.table_name("results")
            region = settings.region
            host = settings.endpoint_url
            max_retry_attempts = pynamodb_retry_attempts()  # the one retry policy

        pk = UnicodeAttribute(hash_key=True)  # dag_id#run_id
        sk = UnicodeAttribute(range_key=True)  # task_id#index#key
        val = UnicodeAttribute(null=True)  # JSON
        s3_key = UnicodeAttribute(null=True)
        pages = NumberAttribute(null=True)  # a paged value's marker: how many pages

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
        if map_index < 0 and len(text) > PAGE_BYTES and indexable(encoded):
            pages = _pages(encoded)
            if pages is not None:
                # Pages first: the marker, written last, says the value is whole.
                with self.model.batch_write() as batch:
                    for start, body in pages:
                        batch.save(self.model(self.pk, _page_sk(item.sk, start), val=body))
                item.pages = len(pages)
                item.save()
                return
        if len(text.encode()) > INLINE_LIMIT_BYTES and self.s3 is not None and self.bucket:
            digest = hashlib.sha256(text.encode()).hexdigest()
            s3_key = f"results/{self.pk}/{task_id}/{map_index}/{key}/{digest}.json"
            self.s3.put_object(Bucket=self.bucket, Key=s3_key, Body=text.encode())
            item.s3_key = s3_key
        else:
            item.val = text
        item.save()

    def keys(self, task_id: str, map_index: int) -> list[str]:
        """The keys one instance pushed (the API's XCom list); one Query, page
        items of large values left out."""
        prefix = f"{instance_sk(task_id, map_index)}#"
        found = self.model.query(
            self.pk, self.model.sk.startswith(prefix), attributes_to_get=["sk"]
        )
        return [item.sk[len(prefix) :] for item in found if not _PAGE_SUFFIX.search(item.sk)]

    def pull(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        found, encoded = self.pull_encoded(task_id, map_index, key)
        return found, decode(encoded) if found else None

    def pull_encoded(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        try:
            item = self.model.get(self.pk, _sk(task_id, map_index, key), consistent_read=True)
        except self.model.DoesNotExist:
            return False, None
        return True, self._load(item)

    def pull_element(
        self, task_id: str, map_index: int, key: str, index: int
    ) -> tuple[bool, int, Any]:
        """``(found, length, element index)`` of a stored list, tuple or dict,
        reading one page (or the small value itself). IndexError when the value
        is found but ``index`` is outside it; TypeError when it is not indexable."""
        base = _sk(task_id, map_index, key)
        found = list(
            self.model.query(
                self.pk,
                self.model.sk.between(base, _page_sk(base, max(0, index))),
                scan_index_forward=False,
                limit=1,
                consistent_read=True,
            )
        )
        item = found[0] if found else None
        if item is not None and item.sk.startswith(f"{base}#p") and item.val is not None:
            page = json.loads(item.val)
            offset = index - int(page["s"])
            if not 0 <= offset < len(page["items"]):
                raise IndexError(index)
            element = page["items"][offset]
            value = (element[0], decode(element[1])) if page["kind"] == "dict" else decode(element)
            return True, int(page["n"]), value
        if item is None or item.sk != base:  # not found, or another key sorts in between
            present, encoded = self.pull_encoded(task_id, map_index, key)
        else:
            present, encoded = True, self._load(item)
        if not present:
            return False, 0, None
        length, value = decode_item(encoded, index)
        return True, length, value

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
        if item.pages:
            return self._assemble(item.sk)
        if item.s3_key:
            body = self.s3.get_object(Bucket=self.bucket, Key=item.s3_key)["Body"].read()
            return json.loads(body)
        return json.loads(item.val) if item.val is not None else None

    def _assemble(self, base: str) -> Any:
        """A paged value, whole again (a downstream that takes all of it)."""
        kind = "list"
        elements: list[Any] = []
        for page_item in self.model.query(
            self.pk, self.model.sk.startswith(f"{base}#p"), consistent_read=True
        ):
            page = json.loads(page_item.val)
            kind = page["kind"]
            elements.extend(page["items"])
        if kind == "tuple":
            return {TUPLE_TAG: elements}
        if kind == "dict":
            return dict(elements)
        return elements


_PAGE_HEADER_BYTES = 80  # {"kind":...,"n":...,"s":...,"items":[]} around the elements


_PAGE_SUFFIX = re.compile(r"#p\d{10}$")


def _page_sk(base: str, start: int) -> str:
    return f"{base}#p{start:010d}"


def _pages(encoded: Any) -> list[tuple[int, str]] | None:
    """``(first index, JSON)`` of each page; None when an element is too big to page."""
    if isinstance(encoded, list):
        kind, elements = "list", encoded
    elif isinstance(encoded, dict) and list(encoded) == [TUPLE_TAG]:
        kind, elements = "tuple", encoded[TUPLE_TAG]
    else:
        kind, elements = "dict", [[k, v] for k, v in encoded.items()]
    texts = [json.dumps(e, separators=(",", ":")) for e in elements]
    if any(len(t) > PAGE_LIMIT_BYTES for t in texts):
        return None
    pages: list[tuple[int, str]] = []
    start, size, chunk = 0, 0, []  # type: ignore[var-annotated]
    for index, text in enumerate(texts):
        if chunk and size + len(text) + 1 > PAGE_BYTES - _PAGE_HEADER_BYTES:
            pages.append((start, _page_body(kind, len(texts), start, chunk)))
            start, size, chunk = index, 0, []
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        pages.append((start, _page_body(kind, len(texts), start, chunk)))
    return pages


def _page_body(kind: str, length: int, start: int, elements: list[str]) -> str:
    return f'{{"kind":"{kind}","n":{length},"s":{start},"items":[{",".join(elements)}]}}'
