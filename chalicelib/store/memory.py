"""The state store in process memory, for ``dags test`` and as the contract's reference.

One lock guards everything, so each write is as atomic as a DynamoDB
transaction; conditions are checked exactly as the DynamoDB adapter's are.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.core.engine import Command, FinishRun, StartTimer, TaskSummary
from chalicelib.core.fan_in import FanInCounts
from chalicelib.core.progress import RunProgress, initial_progress
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.slots import SlotClaim, decode_held
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.store.base import (
    ActiveRun,
    DagRecord,
    DagVersionRecord,
    RunNotFound,
    Settled,
    StateStore,
    TransitionResult,
)
from chalicelib.store.changes import (
    ExpansionWrite,
    InstanceWrite,
    applied,
    count_instances,
    missing_instance,
    plan,
    with_run_outcome,
)
from chalicelib.store.past_runs import select_by_logical_date


@dataclass
class _RunRecord:
    run: DagRun
    progress: RunProgress
    instances: dict[tuple[str, int], TaskInstance] = field(default_factory=dict)
    heartbeats: dict[tuple[str, int], dt.datetime] = field(default_factory=dict)
    mapped_count: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)  # core.map_window
    tallies: dict[str, Counter[TaskState]] = field(default_factory=dict)
    fan_in: dict[str, Counter[TaskState]] = field(default_factory=dict)  # core.fan_in
    checked: tuple[int, dt.datetime] | None = None  # (finished count, when) at the last check

    def instance(self, spec: DagSpec, task_id: str, map_index: int) -> TaskInstance | None:
        stored = self.instances.get((task_id, map_index))
        if stored is not None:
            return stored
        if map_index < 0 and task_id in spec.tasks:
            return missing_instance(task_id, map_index)
        if 0 <= map_index < self.mapped_count.get(task_id, 0):
            return missing_instance(task_id, map_index)
        return None


class InMemoryStateStore(StateStore):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._dags: dict[str, DagRecord] = {}
        self._versions: dict[tuple[str, str], DagVersionRecord] = {}
        self._runs: dict[tuple[str, str], _RunRecord] = {}
        self._used: Counter[str] = Counter()
        self._pools: dict[str, int] = {}
        from chalicelib.store.backfills import InMemoryBackfillStore

        self.backfills = InMemoryBackfillStore(self)
        from chalicelib.store.deadlines import InMemoryDeadlineStore

        self.deadlines = InMemoryDeadlineStore()

    # ------------------------------------------------------------ DAGs

    def upsert_dag(self, record: DagRecord) -> None:
        with self._lock:
            self._dags[record.dag_id] = record

    def get_dag(self, dag_id: str) -> DagRecord | None:
        with self._lock:
            return self._dags.get(dag_id)

    def due_dags(self, now: dt.datetime) -> list[str]:
        with self._lock:
            due = [
                d
                for d in self._dags.values()
                if d.active and not d.paused and d.next_due_at and d.next_due_at <= now
            ]
        due.sort(key=lambda d: (d.next_due_at, d.dag_id))
        return [d.dag_id for d in due]

    def put_dag_version(self, record: DagVersionRecord) -> bool:
        with self._lock:
            key = (record.dag_id, record.version)
            if key in self._versions:
                return False
            number = 1 + sum(1 for d, _ in self._versions if d == record.dag_id)
            self._versions[key] = replace(record, number=number)
            return True

    def get_dag_version(self, dag_id: str, version: str) -> DagVersionRecord | None:
        with self._lock:
            return self._versions.get((dag_id, version))

    # ------------------------------------------------------------ runs

    def create_run(self, run: DagRun, spec: DagSpec) -> bool:
        with self._lock:
            key = (run.dag_id, run.run_id)
            if key in self._runs:
                return False
            self._runs[key] = _RunRecord(
                run,
                initial_progress(spec),
                fan_in={join: Counter() for join in spec.fan_ins.counted},
            )
            return True

    def _record(self, dag_id: str, run_id: str) -> _RunRecord:
        record = self._runs.get((dag_id, run_id))
        if record is None:
            raise RunNotFound(f"no run {run_id!r} of DAG {dag_id!r}")
        return record

    def get_run(self, dag_id: str, run_id: str) -> DagRun | None:
        with self._lock:
            record = self._runs.get((dag_id, run_id))
            return None if record is None else record.run

    def runs_by_logical_date(self, dag_id: str, **where: Any) -> list[DagRun]:
        with self._lock:
            runs = [r.run for (d, _), r in self._runs.items() if d == dag_id]
        return select_by_logical_date(runs, **where)

    def run_progress(self, dag_id: str, run_id: str) -> RunProgress:
        with self._lock:
            return self._record(dag_id, run_id).progress

    def active_runs(self, dag_id: str) -> list[ActiveRun]:
        with self._lock:
            return [
                ActiveRun(r.run.dag_id, r.run.run_id, r.run.state, r.run.run_after)
                for (d, _), r in self._runs.items()
                if d == dag_id and r.run.state in (DagRunState.QUEUED, DagRunState.RUNNING)
            ]

    def running_runs(self) -> list[ActiveRun]:
        with self._lock:
            return [
                ActiveRun(r.run.dag_id, r.run.run_id, r.run.state, r.run.run_after)
                for r in self._runs.values()
                if r.run.state is DagRunState.RUNNING
            ]

    def check_stalled(
        self, dag_id: str, run_id: str, now: dt.datetime, stall: dt.timedelta
    ) -> bool:
        with self._lock:
            record = self._record(dag_id, run_id)
            done = record.progress.finished
            unchanged = record.checked is not None and record.checked[0] == done
            stalled = unchanged and record.checked is not None and record.checked[1] <= now - stall
            if unchanged and not stalled:
                return False
            record.checked = (done, now)
            return stalled

    def start_run(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        with self._lock:
            record = self._record(dag_id, run_id)
            if record.run.state is not DagRunState.QUEUED:
                return False
            record.run = record.run.with_state(DagRunState.RUNNING, start_date=now)
            return True

    def finish_run(self, dag_id: str, run_id: str, state: DagRunState, now: dt.datetime) -> bool:
        with self._lock:
            record = self._record(dag_id, run_id)
            if record.run.state is not DagRunState.RUNNING:
                return False
            record.run = record.run.with_state(state, end_date=now)
            return True

    def reopen_run(self, dag_id: str, run_id: str, expected: DagRunState) -> bool:
        with self._lock:
            record = self._record(dag_id, run_id)
            if record.run.state is not expected:
                return False
            record.run = record.run.with_state(DagRunState.QUEUED, end_date=None)
            return True

    def restate_run(
        self, dag_id: str, run_id: str, expected: DagRunState, new: DagRunState, now: dt.datetime
    ) -> bool:
        with self._lock:
            record = self._record(dag_id, run_id)
            if record.run.state is not expected:
                return False
            start = now if expected is DagRunState.QUEUED else record.run.start_date
            record.run = record.run.with_state(new, end_date=now, start_date=start)
            return True

    # ------------------------------------------------------- instances

    def run_view(self, dag_id: str, run_id: str, spec: DagSpec) -> _MemoryRunView:
        return _MemoryRunView(self, dag_id, run_id, spec)

    def get_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> TaskInstance | None:
        with self._lock:
            return self._record(dag_id, run_id).instances.get((task_id, map_index))

    def apply(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        commands: Sequence[Command],
        now: dt.datetime,
        on_taken: Callable[[Command], None] | None = None,
    ) -> list[Command]:
        taken: list[Command] = []
        moved = False  # did our writes move the counters that decide the run's end?
        with self._lock:
            record = self._record(dag_id, run_id)
            for command in commands:
                write = plan(spec, command, now)
                if write is None:
                    taken.append(command)
                    continue
                if not self._write(record, spec, write):
                    continue
                taken.append(command)
                moved = moved or write.progress.may_finish_run
            outcome = record.progress.outcome
            running = record.run.state is DagRunState.RUNNING
        if on_taken is not None:
            for command in taken:
                if not isinstance(command, (StartTimer, FinishRun)):
                    on_taken(command)
        return with_run_outcome(taken, moved, outcome, running)

    def _transition(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        write: InstanceWrite,
        *,
        read_outcome: bool,
        defer_counters: bool,
    ) -> TransitionResult:
        key = (write.task_id, write.map_index)
        with self._lock:
            record = self._record(dag_id, run_id)
            if not self._write(record, spec, write, counters=not defer_counters):
                return TransitionResult(False)
            if defer_counters:
                return TransitionResult(True, record.instances[key], None, write)
            outcome = None
            finished = write.progress.finished and record.run.state is DagRunState.RUNNING
            if read_outcome and finished:
                outcome = record.progress.outcome
            return TransitionResult(True, record.instances[key], outcome)

    def _acquire(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        write: InstanceWrite,
        claims: tuple[SlotClaim, ...],
    ) -> bool:
        with self._lock:
            if any(self._used[c.key] + c.amount > c.limit for c in claims):
                return False
            if not self._write(self._record(dag_id, run_id), spec, write):
                return False
            for claim in claims:
                self._used[claim.key] += claim.amount
            return True

    def waiting(self, key: str, limit: int) -> list[tuple[str, TaskInstance]]:
        with self._lock:
            found = [
                (f"{dag_id}#{run_id}", ti)
                for (dag_id, run_id), record in self._runs.items()
                for ti in record.instances.values()
                if ti.wait_key == key and ti.state is TaskState.SCHEDULED
            ]
        found.sort(key=lambda pair: pair[1].wait_rank or "")
        return found[:limit]

    def used(self, key: str) -> int:
        """Slots in use on a counter (tests and the CLI read it)."""
        with self._lock:
            return self._used[key]

    def drop_idle_counters(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                if self._used.get(key, 0) <= 0:
                    self._used.pop(key, None)

    def set_pool(self, name: str, slots: int) -> None:
        with self._lock:
            self._pools[name] = slots

    def pools(self) -> dict[str, int]:
        with self._lock:
            return dict(self._pools)

    def heartbeat(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        try_number: int,
        now: dt.datetime,
    ) -> bool:
        with self._lock:
            record = self._record(dag_id, run_id)
            ti = record.instances.get((task_id, map_index))
            if ti is None or ti.state is not TaskState.RUNNING or ti.try_number != try_number:
                return False
            record.heartbeats[(task_id, map_index)] = now  # the first beat takes the lease
            record.instances[(task_id, map_index)] = ti.evolve(last_heartbeat_at=now)
            return True

    def stale_running(self, older_than: dt.datetime) -> list[tuple[str, TaskInstance]]:
        with self._lock:
            stale = [
                (beat, f"{dag_id}#{run_id}", record.instances[key])
                for (dag_id, run_id), record in self._runs.items()
                for key, beat in record.heartbeats.items()
                if beat < older_than
            ]
        stale.sort(key=lambda item: item[0])
        return [(pk, ti) for _, pk, ti in stale]

    # --------------------------------------------------------- writes

    def _claim(
        self, dag_id: str, run_id: str, spec: DagSpec, write: InstanceWrite
    ) -> TransitionResult:
        with self._lock:
            record = self._record(dag_id, run_id)
            if not self._write(record, spec, write):
                return TransitionResult(False)
            return TransitionResult(True, record.instances[(write.task_id, write.map_index)])

    def settle_counters(self, dag_id: str, run_id: str, pending: Any) -> Settled:
        with self._lock:
            record = self._record(dag_id, run_id)
            self._move_counters(record, pending)
            if pending.map_index < 0:
                fan_in = {j: _nonzero(record.fan_in[j]) for j, _, _ in pending.fan_in_moves}
                return Settled(record.progress, fan_in=fan_in)
            tally = record.tallies[pending.task_id]
            placeholder = record.instances.get((pending.task_id, -1))
            summary = TaskSummary(
                placeholder or missing_instance(pending.task_id, -1),
                mapped_count=record.mapped_count[pending.task_id],
                state_counts={s: n for s, n in tally.items() if n},
                window=record.windows.get(pending.task_id),
            )
            return Settled(record.progress, summary)

    def recount(self, dag_id: str, run_id: str, spec: DagSpec) -> RunProgress:
        with self._lock:
            record = self._record(dag_id, run_id)
            progress, tallies = count_instances(
                spec, dict(record.mapped_count), list(record.instances.values())
            )
            record.progress = progress
            for tid, counts in tallies.items():
                record.tallies[tid] = Counter(counts)
            fan_in = spec.fan_ins.count(record.instances.values())
            record.fan_in = {join: Counter(counts) for join, counts in fan_in.items()}
            return progress

    def _move_counters(self, record: _RunRecord, write: InstanceWrite) -> None:
        old_tally, new_tally = write.tally_moves
        if old_tally is not None:
            record.tallies[write.task_id][old_tally] -= 1
        if new_tally is not None:
            record.tallies[write.task_id][new_tally] += 1
        for join, state, step in write.fan_in_moves:
            record.fan_in[join][state] += step
        record.progress = record.progress + write.progress

    def _write(
        self,
        record: _RunRecord,
        spec: DagSpec,
        write: InstanceWrite | ExpansionWrite,
        *,
        counters: bool = True,
    ) -> bool:
        """One guarded write; False when its condition does not hold."""
        if isinstance(write, ExpansionWrite):
            if write.task_id in record.mapped_count:
                return False
            placeholder = record.instance(spec, write.task_id, -1)
            if placeholder is None or placeholder.state is not TaskState.NONE:
                return False
            record.instances.setdefault((write.task_id, -1), placeholder)
            record.mapped_count[write.task_id] = write.count
            if write.window is not None:
                record.windows[write.task_id] = write.window
            record.tallies[write.task_id] = Counter()
            record.progress = record.progress + write.progress
            return True
        key = (write.task_id, write.map_index)
        current = record.instance(spec, *key)
        if current is None:
            return False
        if current.state is not write.expected or current.try_number != write.expected_try:
            return False
        record.instances[key] = applied(current, write)
        for entry in write.releases:
            held_key, amount = decode_held(entry)
            self._used[held_key] -= amount
        if write.heartbeat is not None:
            record.heartbeats[key] = write.heartbeat
        else:
            record.heartbeats.pop(key, None)
        if counters:
            self._move_counters(record, write)
        return True


class _MemoryRunView:
    """The engine's ``RunStateView`` over one in-memory run."""

    def __init__(self, store: InMemoryStateStore, dag_id: str, run_id: str, spec: DagSpec):
        self._store = store
        self._key = (dag_id, run_id)
        self._spec = spec

    def _record(self) -> _RunRecord:
        return self._store._record(*self._key)

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        with self._store._lock:
            record = self._record()
            result: dict[str, TaskSummary] = {}
            for tid in task_ids:
                placeholder = record.instance(self._spec, tid, -1)
                assert placeholder is not None, tid
                count = record.mapped_count.get(tid)
                if count is None:
                    result[tid] = TaskSummary(placeholder)
                else:
                    tally = {s: n for s, n in record.tallies[tid].items() if n}
                    result[tid] = TaskSummary(
                        placeholder,
                        mapped_count=count,
                        state_counts=tally,
                        window=record.windows.get(tid),
                    )
            return result

    def fan_in(self, join_ids: Collection[str]) -> Mapping[str, FanInCounts]:
        with self._store._lock:
            record = self._record()
            return {join: _nonzero(record.fan_in[join]) for join in join_ids}

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None:
        with self._store._lock:
            return self._record().instance(self._spec, task_id, map_index)

    def unfinished(self) -> Iterable[TaskInstance]:
        with self._store._lock:
            record = self._record()
            found: list[TaskInstance] = []
            for tid in self._spec.tasks:
                count = record.mapped_count.get(tid)
                indices: Iterable[int] = [-1] if count is None else range(count)
                for index in indices:
                    ti = record.instance(self._spec, tid, index)
                    if ti is not None and not ti.state.finished:
                        found.append(replace(ti))
            return found


def _nonzero(counts: Counter[TaskState]) -> dict[TaskState, int]:
    return {state: n for state, n in counts.items() if n}
