"""Human-in-the-loop requests and their answers (Airflow's HITLDetail).

One table (``<prefix>-<stage>-hitl``), one item per task instance:

    pk <tenant>   sk <dag id>/<run id>/<task id>/<map index>

so listing a tenant's requests (all, one DAG's, one run's) is one Query on the
partition with a key prefix, never a scan. A request belongs to one try
(``tr``): a new try (a retry, a clear) replaces it and its answer.

An answer is written once. A person's answer is one transaction with the task
instance: the item gains its answer only if it has none and is still the try's
request, and the instance, waiting ``up_for_reschedule`` at that try, gets
``next_try`` = now, so the timer message sent next (or the tick's
reconciliation, if the sender dies first) starts its next poke at once. Of two
answers, or an answer and the timeout's defaults, exactly one lands.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core.hitl import (
    AlreadyResponded,
    HitlKey,
    HitlRequest,
    HitlResponse,
    NotWaiting,
)
from chalicelib.core.states import TaskState
from chalicelib.store.models import DEFAULT_TENANT, instance_pk, instance_sk

CONDITION_FAILED = "ConditionalCheckFailedException"


def build_hitl_model(table_name: str) -> type[Any]:
    """The hitl table's pynamodb model (region/host are set by build_models)."""

    class HitlItemModel(Model):
        class Meta:
            table_name = ""

        pk = UnicodeAttribute(hash_key=True)  # tenant
        sk = UnicodeAttribute(range_key=True)  # dag/run/task/map_index
        dag = UnicodeAttribute()
        run = UnicodeAttribute()
        task = UnicodeAttribute()
        mi = NumberAttribute()
        tr = NumberAttribute()  # the try this request belongs to
        req = UnicodeAttribute()  # JSON: subject, body, options, defaults, multiple, params, users
        created = UTCDateTimeAttribute()
        got = BooleanAttribute(null=True)  # response_received
        resp = UnicodeAttribute(null=True)  # JSON: chosen_options, params_input, responded_by
        at = UTCDateTimeAttribute(null=True)  # responded_at

    HitlItemModel.Meta.table_name = table_name
    return HitlItemModel


def item_sk(key: HitlKey) -> str:
    return f"{key.dag_id}/{key.run_id}/{key.task_id}/{key.map_index}"


def _request_json(request: HitlRequest) -> str:
    return json.dumps(
        {
            "subject": request.subject,
            "body": request.body,
            "options": list(request.options),
            "defaults": None if request.defaults is None else list(request.defaults),
            "multiple": request.multiple,
            "params": dict(request.params),
            "assigned_users": [dict(u) for u in request.assigned_users],
        },
        default=str,
    )


def _request(item: Any) -> HitlRequest:
    data = json.loads(item.req)
    return HitlRequest(
        subject=data["subject"],
        options=tuple(data["options"]),
        body=data.get("body"),
        defaults=None if data.get("defaults") is None else tuple(data["defaults"]),
        multiple=bool(data.get("multiple")),
        params=data.get("params") or {},
        assigned_users=tuple(data.get("assigned_users") or ()),
        try_number=int(item.tr),
        created_at=item.created,
    )


def _response(item: Any) -> HitlResponse | None:
    if not item.got or item.resp is None:
        return None
    data = json.loads(item.resp)
    return HitlResponse(
        chosen_options=tuple(data["chosen_options"]),
        params_input=data.get("params_input") or {},
        responded_at=item.at,
        responded_by=data.get("responded_by"),
    )


def _response_json(response: HitlResponse) -> str:
    return json.dumps(
        {
            "chosen_options": list(response.chosen_options),
            "params_input": dict(response.params_input),
            "responded_by": dict(response.responded_by) if response.responded_by else None,
        },
        default=str,
    )


class HitlRecord:
    """A stored request with its key and its answer, if it has one."""

    def __init__(self, item: Any):
        self.key = HitlKey(item.dag, item.run, item.task, int(item.mi))
        self.request = _request(item)
        self.response = _response(item)


class HitlStore:
    """The hitl table for one deployment; the tenant is named on each call."""

    def __init__(self, model: type[Any], task_instance_model: type[Any], connection: Connection):
        self.model = model
        self.ti = task_instance_model
        self._connection = connection

    @staticmethod
    def _pk(tenant: str | None) -> str:
        return tenant or DEFAULT_TENANT

    def open(
        self, tenant: str | None, key: HitlKey, request: HitlRequest, now: dt.datetime
    ) -> bool:
        """Record the try's request; False when it is recorded already (a repeated
        poke). An older try's request and answer are replaced."""
        model = self.model
        item = model(
            self._pk(tenant),
            item_sk(key),
            dag=key.dag_id,
            run=key.run_id,
            task=key.task_id,
            mi=key.map_index,
            tr=request.try_number,
            req=_request_json(request),
            created=now,
        )
        try:
            item.save(condition=model.pk.does_not_exist() | (model.tr < request.try_number))
        except PutError as exc:
            if exc.cause_response_code == CONDITION_FAILED:
                return False
            raise
        return True

    def get(self, tenant: str | None, key: HitlKey) -> HitlRecord | None:
        try:
            item = self.model.get(self._pk(tenant), item_sk(key), consistent_read=True)
        except DoesNotExist:
            return None
        return HitlRecord(item)

    def records(
        self, tenant: str | None, dag_id: str | None = None, run_id: str | None = None
    ) -> Iterator[HitlRecord]:
        """The tenant's requests, of one DAG or one run when named (a key-prefix Query)."""
        model = self.model
        prefix = "" if dag_id is None else f"{dag_id}/" + ("" if run_id is None else f"{run_id}/")
        condition = model.sk.startswith(prefix) if prefix else None
        for item in model.query(self._pk(tenant), condition, consistent_read=True):
            if dag_id is not None and item.dag != dag_id:
                continue
            if run_id is not None and item.run != run_id:
                continue
            yield HitlRecord(item)

    def _answer_update(self, response: HitlResponse) -> list[Any]:
        model = self.model
        return [
            model.got.set(True),
            model.resp.set(_response_json(response)),
            model.at.set(response.responded_at),
        ]

    def _unanswered(self, try_number: int) -> Any:
        model = self.model
        return model.pk.exists() & (model.tr == try_number) & model.got.does_not_exist()

    def respond(
        self, tenant: str | None, key: HitlKey, try_number: int, response: HitlResponse
    ) -> None:
        """A person's answer, and the waiting instance woken, in one transaction.

        AlreadyResponded when the request has its answer; NotWaiting when the
        request is another try's, or the instance is not waiting at that try
        (its poke is running: the caller may try again)."""
        model, ti = self.model, self.ti
        item = model(self._pk(tenant), item_sk(key))
        instance = ti(instance_pk(key.dag_id, key.run_id), instance_sk(key.task_id, key.map_index))
        waiting = (ti.st == TaskState.UP_FOR_RESCHEDULE.value) & (ti.try_n == try_number)
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.update(
                    item,
                    actions=self._answer_update(response),
                    condition=self._unanswered(try_number),
                )
                transaction.update(
                    instance, actions=[ti.next_try.set(response.responded_at)], condition=waiting
                )
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in exc.cancellation_reasons or []]
            if not reasons or all(r in (None, "None") for r in reasons):
                raise
            if reasons[0] == "ConditionalCheckFailed":
                current = self.get(tenant, key)
                if current is not None and current.response is not None:
                    raise AlreadyResponded(f"{_label(key)} has a response already") from None
                raise NotWaiting(
                    f"{_label(key)} has no open request for try {try_number}"
                ) from None
            raise NotWaiting(
                f"{_label(key)} is not waiting for a response right now (its check is "
                "running); try again in a moment"
            ) from None

    def close(
        self, tenant: str | None, key: HitlKey, try_number: int, response: HitlResponse
    ) -> HitlResponse:
        """The timeout's answer (the defaults), unless a person's landed first:
        the answer that stands either way."""
        item = self.model(self._pk(tenant), item_sk(key))
        try:
            item.update(
                actions=self._answer_update(response), condition=self._unanswered(try_number)
            )
        except UpdateError as exc:
            if exc.cause_response_code != CONDITION_FAILED:
                raise
            current = self.get(tenant, key)
            if current is None or current.response is None:
                raise NotWaiting(
                    f"{_label(key)} has no open request for try {try_number}"
                ) from None
            return current.response
        return response

    def instance_state(self, key: HitlKey) -> tuple[str | None, int | None, dt.datetime | None]:
        """The task instance's (state, try number, next_try), for the API's answers."""
        try:
            item = self.ti.get(
                instance_pk(key.dag_id, key.run_id),
                instance_sk(key.task_id, key.map_index),
                consistent_read=True,
            )
        except DoesNotExist:
            return None, None, None
        return item.st, None if item.try_n is None else int(item.try_n), item.next_try


def _label(key: HitlKey) -> str:
    index = "" if key.map_index < 0 else f"[{key.map_index}]"
    return f"{key.dag_id}/{key.run_id}/{key.task_id}{index}"


def hitl_store(state: Any) -> HitlStore:
    """The HitlStore beside a DynamoStateStore (same tables, same connection)."""
    return HitlStore(state.models.hitl, state.models.task_instance, state._connection)
