"""One contract, two stores: the in-memory store and DynamoDB (moto) behave the same."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import replace
from typing import Any

from chalicelib.core.engine import (
    Command,
    ExpandTask,
    FinishRun,
    RetryDue,
    ScheduleTask,
    SetTaskState,
    StartTimer,
)
from chalicelib.core.progress import RunProgress
from chalicelib.core.runs import DagRun
from chalicelib.core.slots import SlotClaim
from chalicelib.core.spec import DagSpec, ExecutorSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.store.base import DagRecord, DagVersionRecord, StateStore
from tests.core.simulation import literal_mapping, make_spec
from tests.store.runs import MAP_WIDTH, T0, chain_branch_map_spec, drive, new_run


def schedule(task_id: str, map_index: int = -1, try_number: int = 1) -> ScheduleTask:
    return ScheduleTask(
        task_id=task_id,
        map_index=map_index,
        expected=TaskState.NONE if try_number == 1 else TaskState.UP_FOR_RETRY,
        try_number=try_number,
        priority=1,
        pool="default_pool",
        pool_slots=1,
        executor=ExecutorSpec(),
    )


SPEC = make_spec({"a": ["b"], "b": ["c"]})
MAPPED = make_spec({"src": ["m"], "m": ["end"]}, m={"mapping": literal_mapping(5)})


def started(store: StateStore, spec: DagSpec = SPEC) -> DagRun:
    run = new_run(spec)
    assert store.create_run(run, spec)
    assert store.start_run(run.dag_id, run.run_id, T0)
    return run


class TestStateStoreContract:
    def test_create_run_twice_creates_once(self, store: StateStore) -> None:
        run = new_run(SPEC)
        assert store.create_run(run, SPEC) is True
        assert store.create_run(run.with_state(DagRunState.RUNNING), SPEC) is False
        stored = store.get_run(run.dag_id, run.run_id)
        assert stored is not None
        assert stored.state is DagRunState.QUEUED
        assert stored.conf == {"source": "test"}
        assert stored.logical_date == run.logical_date
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(3, 0, 0)
        assert store.get_run(run.dag_id, "manual__other") is None

    def test_run_start_and_finish_are_conditional(self, store: StateStore) -> None:
        run = new_run(SPEC)
        store.create_run(run, SPEC)
        assert not store.finish_run(run.dag_id, run.run_id, DagRunState.SUCCESS, T0)
        assert store.start_run(run.dag_id, run.run_id, T0)
        assert not store.start_run(run.dag_id, run.run_id, T0)
        assert store.finish_run(run.dag_id, run.run_id, DagRunState.FAILED, T0)
        assert not store.finish_run(run.dag_id, run.run_id, DagRunState.SUCCESS, T0)
        final = store.get_run(run.dag_id, run.run_id)
        assert final is not None and final.state is DagRunState.FAILED
        assert final.start_date == T0 and final.end_date == T0

    def test_missing_instance_is_none_until_written(self, store: StateStore) -> None:
        run = started(store)
        view = store.run_view(run.dag_id, run.run_id, SPEC)
        summary = view.summaries(["a"])["a"]
        assert summary.instance.state is TaskState.NONE
        assert summary.instance.try_number == 0
        assert store.get_instance(run.dag_id, run.run_id, "a", -1) is None
        assert view.instance("nope", -1) is None
        assert {ti.task_id for ti in view.unfinished()} == {"a", "b", "c"}

    def test_transitions_are_conditional_on_state_and_try(self, store: StateStore) -> None:
        run = started(store)
        key = (run.dag_id, run.run_id, SPEC, "a", -1)
        assert store.apply(run.dag_id, run.run_id, SPEC, [schedule("a")], T0) == [schedule("a")]
        # Scheduling queued the try in one write.
        claimed = store.get_instance(run.dag_id, run.run_id, "a", -1)
        assert claimed is not None
        assert claimed.state is TaskState.QUEUED and claimed.queued_at == T0
        assert claimed.try_number == 1
        # Wrong expected state loses; so does the right state with the wrong try.
        assert not store.transition(
            *key, expected=TaskState.NONE, new=TaskState.QUEUED, try_number=0, now=T0
        ).won
        assert not store.transition(
            *key, expected=TaskState.QUEUED, new=TaskState.RUNNING, try_number=2, now=T0
        ).won
        assert store.transition(
            *key,
            expected=TaskState.QUEUED,
            new=TaskState.RUNNING,
            try_number=1,
            now=T0,
            start_date=T0,
        ).won
        done = store.transition(
            *key,
            expected=TaskState.RUNNING,
            new=TaskState.SUCCESS,
            try_number=1,
            now=T0,
            end_date=T0,
            result_length=3,
            rendered_map_index="eu-west-1",
            skip_downstream=("c",),
        )
        assert done.won and done.run_outcome is None
        ti = store.get_instance(run.dag_id, run.run_id, "a", -1)
        assert ti is not None
        assert (ti.state, ti.try_number, ti.result_length) == (TaskState.SUCCESS, 1, 3)
        assert ti.rendered_map_index == "eu-west-1"
        assert ti.skip_downstream == ("c",)
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(3, 1, 0)

    def test_replaying_commands_changes_nothing(self, store: StateStore) -> None:
        run = started(store)
        commands: list[Command] = [
            schedule("a"),
            SetTaskState("b", -1, TaskState.NONE, TaskState.SKIPPED, 0, reason="test"),
            StartTimer(RetryDue("a"), T0 + dt.timedelta(minutes=5)),
        ]
        first = store.apply(run.dag_id, run.run_id, SPEC, commands, T0)
        assert first == commands
        before = [store.get_instance(run.dag_id, run.run_id, t, -1) for t in "abc"]
        progress = store.run_progress(run.dag_id, run.run_id)
        later = T0 + dt.timedelta(hours=1)
        second = store.apply(run.dag_id, run.run_id, SPEC, commands, later)
        assert second == [commands[2]]  # timers pass through; the writes were lost
        after = [store.get_instance(run.dag_id, run.run_id, t, -1) for t in "abc"]
        assert after == before
        assert store.run_progress(run.dag_id, run.run_id) == progress == RunProgress(3, 1, 0)
        assert before[1] is not None and before[1].end_date == T0
        assert before[1].error == "test"

    def test_expansion_sets_count_once_and_tallies(self, store: StateStore) -> None:
        run = started(store, MAPPED)
        ids = (run.dag_id, run.run_id, MAPPED)
        commands: list[Command] = [ExpandTask("m", 5), *(schedule("m", i) for i in range(5))]
        taken = store.apply(*ids, commands, T0)
        assert taken == commands
        assert store.apply(*ids, commands, T0) == []
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(3 - 1 + 5, 0, 0)
        view = store.run_view(*ids)
        summary = view.summaries(["m", "src"])["m"]
        assert summary.mapped_count == 5
        assert dict(summary.state_counts) == {}  # only finished states are tallied
        assert view.instance("m", 3).state is TaskState.QUEUED
        for index in (0, 1):
            assert store.transition(
                *ids,
                "m",
                index,
                expected=TaskState.QUEUED,
                new=TaskState.RUNNING,
                try_number=1,
                now=T0,
            ).won
        store.transition(
            *ids, "m", 0, expected=TaskState.RUNNING, new=TaskState.FAILED, try_number=1, now=T0
        )
        summary = store.run_view(*ids).summaries(["m"])["m"]
        assert dict(summary.state_counts) == {TaskState.FAILED: 1}
        assert summary.count(TaskState.FAILED) == 1
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(7, 1, 0)
        view = store.run_view(*ids)
        assert view.instance("m", 4) is not None
        assert view.instance("m", 5) is None
        unfinished = {ti.label for ti in view.unfinished()}
        assert unfinished == {"src", "end", *(f"m[{i}]" for i in range(1, 5))}

    def test_claims_start_a_try_once_queued_or_direct(self, store: StateStore) -> None:
        run = started(store)
        ids = (run.dag_id, run.run_id, SPEC)
        # queued by the scheduler: only the queued try number can be claimed
        store.apply(*ids, [schedule("a")], T0)
        assert not store.claim(*ids, "a", -1, 2, T0).won
        assert not store.claim(*ids, "a", -1, 1, T0, direct=True).won  # it is not NONE
        first = store.claim(*ids, "a", -1, 1, T0)
        assert first.won and first.instance is not None
        assert (first.instance.state, first.instance.start_date) == (TaskState.RUNNING, T0)
        assert not store.claim(*ids, "a", -1, 1, T0).won  # a duplicate invoke
        # dispatched directly by a hand-off: claimed from NONE, once
        later = T0 + dt.timedelta(seconds=1)
        direct = store.claim(*ids, "b", -1, 1, later, direct=True)
        assert direct.won and direct.instance is not None
        assert direct.instance.state is TaskState.RUNNING
        assert (direct.instance.try_number, direct.instance.queued_at) == (1, later)
        assert not store.claim(*ids, "b", -1, 1, later, direct=True).won
        assert not store.claim(*ids, "b", -1, 1, later).won  # it was never queued
        # a claim takes no heartbeat lease: neither is in the index before its first beat
        assert store.stale_running(later + dt.timedelta(1)) == []
        # the scheduler's own queueing of a directly started try loses
        assert store.apply(*ids, [schedule("b")], later) == []
        # a direct claim of a queued try loses, so the queued worker starts it
        store.apply(*ids, [schedule("c")], later)
        assert not store.claim(*ids, "c", -1, 1, later, direct=True).won
        assert store.claim(*ids, "c", -1, 1, later).won
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(3, 0, 0)

    def test_settling_a_mapped_instance_answers_with_the_fresh_summary(
        self, store: StateStore
    ) -> None:
        run = started(store, MAPPED)
        ids = (run.dag_id, run.run_id, MAPPED)
        store.apply(*ids, [ExpandTask("m", 5)], T0)
        assert store.claim(*ids, "m", 2, 1, T0, direct=True).won
        recorded = record_success(store, ids, "m", 2, 1, defer_counters=True)
        assert recorded.won
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(7, 0, 0)  # deferred
        settled = store.settle_counters(run.dag_id, run.run_id, recorded.pending)
        assert settled.progress == RunProgress(7, 1, 0)
        assert settled.mapped is not None and settled.mapped.mapped_count == 5
        assert dict(settled.mapped.state_counts) == {TaskState.SUCCESS: 1}
        # what a reader sees agrees, and the tally moved once
        view = store.run_view(*ids)
        assert dict(view.summaries(["m"])["m"].state_counts) == {TaskState.SUCCESS: 1}
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(7, 1, 0)
        # an unmapped change has no map to report
        assert store.claim(*ids, "src", -1, 1, T0, direct=True).won
        unmapped = record_success(store, ids, "src", -1, 1, defer_counters=True)
        settled = store.settle_counters(run.dag_id, run.run_id, unmapped.pending)
        assert settled.mapped is None and settled.progress == RunProgress(7, 2, 0)

    def test_slots_go_back_only_with_the_write_that_ends_the_try(self, store: StateStore) -> None:
        run = started(store)
        ids = (run.dag_id, run.run_id, SPEC)
        claim = SlotClaim("pool:etl", 2, 3)
        waiting = replace(schedule("a"), claims=(claim,))
        assert store.apply(*ids, [waiting], T0) == [waiting]  # SCHEDULED, waiting
        assert [ti.label for _, ti in store.waiting("pool:etl", 5)] == ["a"]
        assert store.acquire(*ids, "a", -1, 1, (claim,), T0)
        assert store.waiting("pool:etl", 5) == []
        assert not store.acquire(*ids, "b", -1, 1, (claim,), T0)  # 2 + 2 > 3
        started_try = store.claim(*ids, "a", -1, 1, T0)
        assert started_try.instance is not None
        held = started_try.instance.slots
        assert held == ("pool:etl|2",) and _used(store, "pool:etl") == 2
        # a lost write gives nothing back
        assert not record_success(store, ids, "a", -1, 2, slots=(), releases=held).won
        assert _used(store, "pool:etl") == 2
        assert record_success(
            store, ids, "a", -1, 1, defer_counters=True, slots=(), releases=held
        ).won
        assert _used(store, "pool:etl") == 0  # with the outcome, not after it
        # the scheduler's side: a SetTaskState that ends a held try
        assert store.acquire(*ids, "b", -1, 0, (claim,), T0) is False  # b is not waiting
        b_wait = replace(schedule("b"), claims=(claim,))
        store.apply(*ids, [b_wait], T0)
        assert store.acquire(*ids, "b", -1, 1, (claim,), T0)
        fail = SetTaskState(
            "b", -1, TaskState.QUEUED, TaskState.FAILED, 1, reason="x", held_slots=("pool:etl|2",)
        )
        assert store.apply(*ids, [fail], T0)[0] == fail
        assert _used(store, "pool:etl") == 0
        assert store.apply(*ids, [fail], T0) == []  # replayed: lost, nothing given back twice
        assert _used(store, "pool:etl") == 0

    def test_full_run_with_branch_and_map(self, store: StateStore) -> None:
        spec = chain_branch_map_spec()

        def worker(cmd: ScheduleTask) -> dict[str, Any]:
            return {"skip_downstream": ("other",)} if cmd.task_id == "pick" else {}

        final = drive(store, spec, new_run(spec), worker)
        assert final.state is DagRunState.SUCCESS
        total = len(spec.tasks) - 1 + MAP_WIDTH
        assert store.run_progress(final.dag_id, final.run_id) == RunProgress(total, total, 0)
        view = store.run_view(final.dag_id, final.run_id, spec)
        summaries = view.summaries(list(spec.tasks))
        assert summaries["other"].instance.state is TaskState.SKIPPED
        assert summaries["report"].instance.state is TaskState.SUCCESS
        assert summaries["work"].count(TaskState.SUCCESS) == MAP_WIDTH
        assert list(view.unfinished()) == []

    def test_failed_leaf_fails_the_run_by_counters(self, store: StateStore) -> None:
        spec = make_spec({"a": ["b"]})
        run = started(store, spec)
        ids = (run.dag_id, run.run_id, spec)
        assert store.apply(*ids, [schedule("a")], T0)
        for old, new in (
            (TaskState.QUEUED, TaskState.RUNNING),
            (TaskState.RUNNING, TaskState.FAILED),
        ):
            assert store.transition(*ids, "a", -1, expected=old, new=new, try_number=1, now=T0).won
        fail_b = SetTaskState("b", -1, TaskState.NONE, TaskState.UPSTREAM_FAILED, 0)
        taken = store.apply(*ids, [fail_b], T0)
        assert taken == [fail_b, FinishRun(DagRunState.FAILED, "every task instance finished")]
        assert store.apply(*ids, [fail_b], T0) == []
        assert store.run_progress(run.dag_id, run.run_id) == RunProgress(2, 2, 1)

    def test_heartbeats_and_stale_running_tries(self, store: StateStore) -> None:
        run = started(store)
        ids = (run.dag_id, run.run_id, SPEC)
        store.apply(*ids, [schedule("a"), schedule("b")], T0)
        for task in "ab":
            store.transition(
                *ids,
                task,
                -1,
                expected=TaskState.QUEUED,
                new=TaskState.RUNNING,
                try_number=1,
                now=T0,
            )
        # claimed, never beaten: no lease, so not in the index however old
        assert store.stale_running(T0 + dt.timedelta(days=1)) == []
        ti = store.get_instance(run.dag_id, run.run_id, "a", -1)
        assert ti is not None and ti.last_heartbeat_at is None
        first_beat = T0 + dt.timedelta(seconds=30)
        later = T0 + dt.timedelta(minutes=5)
        assert store.heartbeat(run.dag_id, run.run_id, "a", -1, 1, first_beat)
        assert store.heartbeat(run.dag_id, run.run_id, "b", -1, 1, later)
        assert not store.heartbeat(run.dag_id, run.run_id, "b", -1, 2, later)
        stale = store.stale_running(T0 + dt.timedelta(minutes=1))
        assert [ti.task_id for _, ti in stale] == ["a"]
        assert [ti.last_heartbeat_at for _, ti in stale] == [first_beat]
        b = store.get_instance(run.dag_id, run.run_id, "b", -1)
        assert b is not None and b.last_heartbeat_at == later
        store.transition(
            *ids, "a", -1, expected=TaskState.RUNNING, new=TaskState.SUCCESS, try_number=1, now=T0
        )
        assert store.stale_running(T0 + dt.timedelta(minutes=1)) == []
        # a beat racing the outcome record cannot put the ended try back
        assert not store.heartbeat(run.dag_id, run.run_id, "a", -1, 1, later)
        stale = store.stale_running(T0 + dt.timedelta(days=1))
        assert [ti.task_id for _, ti in stale] == ["b"]
        ended = store.get_instance(run.dag_id, run.run_id, "a", -1)
        assert ended is not None and ended.last_heartbeat_at is None

    def test_dag_versions_are_created_once(self, store: StateStore) -> None:
        big = make_spec({f"task_{i:04d}": [] for i in range(60)})  # over the test's 2 KB limit
        for number, spec in enumerate((SPEC, big), start=1):
            record = DagVersionRecord(
                dag_id=spec.dag_id,
                version=spec.content_hash,
                spec_json=spec.canonical_json(),
                created_at=T0,
                bundle_key=f"bundles/{spec.content_hash}.zip",
                git_commit="abc123",
            )
            assert store.put_dag_version(record)
            assert not store.put_dag_version(
                DagVersionRecord(spec.dag_id, spec.content_hash, "{}", T0)
            )
            stored = store.get_dag_version(spec.dag_id, spec.content_hash)
            # Numbered 1, 2, ... per DAG in the order they were created, as Airflow does.
            assert stored == dataclasses.replace(record, number=number if spec is big else 1)
        assert store.get_dag_version("sim", "0" * 64) is None

    def test_due_dags_lists_only_active_unpaused_due(self, store: StateStore) -> None:
        soon, late = T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(hours=1)
        store.upsert_dag(DagRecord("due_b", "v1", next_due_at=soon, tenant="t"))
        store.upsert_dag(DagRecord("due_a", "v1", next_due_at=T0))
        store.upsert_dag(DagRecord("paused", "v1", paused=True, next_due_at=T0))
        store.upsert_dag(DagRecord("gone", "v1", active=False, next_due_at=T0))
        store.upsert_dag(DagRecord("later", "v1", next_due_at=late))
        store.upsert_dag(DagRecord("manual_only", "v1"))
        assert store.due_dags(soon) == ["due_a", "due_b"]
        store.upsert_dag(DagRecord("due_a", "v2", paused=True, next_due_at=T0))
        assert store.due_dags(soon) == ["due_b"]
        assert store.get_dag("due_b") == DagRecord("due_b", "v1", next_due_at=soon, tenant="t")
        assert store.get_dag("missing") is None


def record_success(
    store: StateStore,
    ids: tuple[Any, ...],
    task_id: str,
    map_index: int,
    try_number: int,
    **kw: Any,
) -> Any:
    """The worker's record of a success (RUNNING -> SUCCESS) at T0."""
    return store.transition(
        *ids,
        task_id,
        map_index,
        expected=TaskState.RUNNING,
        new=TaskState.SUCCESS,
        try_number=try_number,
        now=T0,
        **kw,
    )


def _used(store: StateStore, key: str) -> int:
    return store.used(key)  # type: ignore[attr-defined]
