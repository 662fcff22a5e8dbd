"""The hitl table (store/hitl.py) on moto: a request per try, one answer that
wakes the waiting instance in the same transaction, refusals that change
nothing, and the timeout's defaults losing to an answer that landed first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.core.hitl import AlreadyResponded, HitlKey, HitlRequest, HitlResponse, NotWaiting
from chalicelib.store.hitl import HitlStore, hitl_store
from chalicelib.store.models import instance_pk, instance_sk
from tests.store.conftest import make_dynamo_store, store_settings

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
KEY = HitlKey("d", "manual__2024-01-01T00:00:00+00:00", "ask", -1)
TENANT = "acme"


@pytest.fixture
def stored() -> Iterator[tuple[HitlStore, Any]]:
    with mock_aws():
        state = make_dynamo_store(store_settings())
        yield hitl_store(state), state


def _instance(state: Any, st: str, try_n: int = 1) -> Any:
    model = state.models.task_instance
    item = model(
        instance_pk(KEY.dag_id, KEY.run_id),
        instance_sk(KEY.task_id, KEY.map_index),
        st=st,
        try_n=try_n,
        next_try=T0 + dt.timedelta(days=7),
    )
    item.save()
    return item


def _request(try_number: int = 1) -> HitlRequest:
    return HitlRequest(subject="s", options=("a", "b"), defaults=("b",), try_number=try_number)


def _answer(option: str, by: str | None = "alice", minutes: int = 5) -> HitlResponse:
    who = None if by is None else {"id": by, "name": by}
    return HitlResponse((option,), {}, T0 + dt.timedelta(minutes=minutes), who)


def _next_try(state: Any) -> dt.datetime:
    model = state.models.task_instance
    return model.get(instance_pk(KEY.dag_id, KEY.run_id), instance_sk(KEY.task_id, -1)).next_try


def test_one_answer_lands_and_wakes_the_instance(stored: tuple[HitlStore, Any]) -> None:
    hitl, state = stored
    assert hitl.open(TENANT, KEY, _request(), T0) is True
    assert hitl.open(TENANT, KEY, _request(), T0) is False  # a repeated first poke
    _instance(state, "up_for_reschedule")
    hitl.respond(TENANT, KEY, 1, _answer("a"))
    assert _next_try(state) == T0 + dt.timedelta(minutes=5)
    record = hitl.get(TENANT, KEY)
    assert record is not None and record.response is not None
    assert record.response.chosen_options == ("a",)
    with pytest.raises(AlreadyResponded):
        hitl.respond(TENANT, KEY, 1, _answer("b", minutes=6))
    # the timeout's defaults lose to the answer that landed first
    assert hitl.close(TENANT, KEY, 1, _answer("b", by=None)).chosen_options == ("a",)
    assert hitl.get("other", KEY) is None  # another tenant sees nothing


def test_no_answer_while_the_poke_runs_and_nothing_changes(stored: tuple[HitlStore, Any]) -> None:
    hitl, state = stored
    hitl.open(TENANT, KEY, _request(), T0)
    _instance(state, "running")
    with pytest.raises(NotWaiting, match="try again"):
        hitl.respond(TENANT, KEY, 1, _answer("a"))
    record = hitl.get(TENANT, KEY)
    assert record is not None and record.response is None
    assert _next_try(state) == T0 + dt.timedelta(days=7)


def test_the_timeout_closes_with_defaults_and_a_late_answer_is_refused(
    stored: tuple[HitlStore, Any],
) -> None:
    hitl, state = stored
    hitl.open(TENANT, KEY, _request(), T0)
    assert hitl.close(TENANT, KEY, 1, _answer("b", by=None)).timed_out
    _instance(state, "up_for_reschedule")
    with pytest.raises(AlreadyResponded):
        hitl.respond(TENANT, KEY, 1, _answer("a"))


def test_a_new_try_replaces_the_request_and_its_answer(stored: tuple[HitlStore, Any]) -> None:
    hitl, state = stored
    hitl.open(TENANT, KEY, _request(1), T0)
    hitl.close(TENANT, KEY, 1, _answer("b", by=None))
    assert hitl.open(TENANT, KEY, _request(2), T0 + dt.timedelta(hours=1)) is True
    record = hitl.get(TENANT, KEY)
    assert record is not None and record.request.try_number == 2 and record.response is None
    _instance(state, "up_for_reschedule", try_n=2)
    with pytest.raises(NotWaiting):  # an answer for the old try
        hitl.respond(TENANT, KEY, 1, _answer("a"))
    hitl.respond(TENANT, KEY, 2, _answer("a"))


def test_listing_is_by_tenant_dag_and_run(stored: tuple[HitlStore, Any]) -> None:
    hitl, _ = stored
    for dag, run in (("d", "r1"), ("d", "r2"), ("d2", "r1"), ("d.x", "r1")):
        hitl.open(TENANT, HitlKey(dag, run, "ask"), _request(), T0)
    hitl.open("other", HitlKey("d", "r1", "ask"), _request(), T0)
    assert len(list(hitl.records(TENANT))) == 4
    assert {r.key.run_id for r in hitl.records(TENANT, "d")} == {"r1", "r2"}
    assert [r.key.run_id for r in hitl.records(TENANT, "d", "r2")] == ["r2"]
