"""The state-store port: every read and conditional write the runtime needs.

Instance records are created lazily. ``create_run`` writes one item whatever
the DAG size; a task instance (or a mapped index) that has no record yet is
in state NONE with try 0, and its first transition creates it with a
condition that accepts "missing or NONE". Expanding a mapped task writes
only its placeholder (``mapped_count`` and a NONE tally of ``count``).

Every change names the state and try it expects. A change whose condition
fails is not an error: it is skipped and reported as lost, so replaying the
same commands or events is a no-op.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from chalicelib.core.engine import Command, RunStateView, TaskSummary
from chalicelib.core.errors import SlipstreamError
from chalicelib.core.fan_in import FanInCounts
from chalicelib.core.progress import RunProgress
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.slots import SlotClaim
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.store.changes import InstanceWrite, acquire_write, claim_write, instance_write

if TYPE_CHECKING:
    from chalicelib.store.backfills import BackfillStore
    from chalicelib.store.deadlines import DeadlineStore


DISPATCH_AGAIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""The heartbeat of a queued try waiting to be dispatched again: older than any
real beat, so the reaper's next look finds it."""


class StoreError(SlipstreamError):
    """The state store could not do what was asked (not a lost condition)."""


class RunNotFound(StoreError):
    """No run with this dag id and run id."""


@dataclass(frozen=True)
class DagRecord:
    """The mutable row of a DAG: which version is current and when it is next due."""

    dag_id: str
    current_version: str | None = None
    paused: bool = False
    active: bool = True
    next_due_at: dt.datetime | None = None
    tenant: str | None = None
    # The data interval of the last scheduled run, Airflow's "last automated
    # data interval": the timetable computes the next run from it.
    last_interval_start: dt.datetime | None = None
    last_interval_end: dt.datetime | None = None
    # What lists show of the current version (core.dag_summary), written by deploy.
    summary: str | None = None


@dataclass(frozen=True)
class ActiveRun:
    """A queued or running run, as the max_active_runs checks need it."""

    dag_id: str
    run_id: str
    state: DagRunState
    run_after: dt.datetime


@dataclass(frozen=True)
class DagVersionRecord:
    """An immutable DAG version, named by the hash of its spec and its code bundle."""

    dag_id: str
    version: str
    spec_json: str
    created_at: dt.datetime
    bundle_key: str | None = None
    git_commit: str | None = None
    number: int | None = None  # 1, 2, ... in deploy order; set by the store when created


@dataclass(frozen=True)
class TransitionResult:
    """What a worker-side change did.

    ``won`` is False when another writer got there first (the condition
    failed). ``run_outcome`` is set when this change brought the run's
    finished counter to its total: the caller then calls ``finish_run``.
    """

    won: bool
    instance: TaskInstance | None = None  # only where the adapter has it for free
    run_outcome: DagRunState | None = None
    pending: Any = None  # the write whose counters are deferred (see settle_counters)


@dataclass(frozen=True)
class Settled:
    """What ``settle_counters`` moved, as it is after the move."""

    progress: RunProgress
    mapped: TaskSummary | None = None  # the map's summary, for a mapped instance
    # the counts of the wide joins the write moved (core.fan_in), after the move
    fan_in: Mapping[str, FanInCounts] = field(default_factory=dict)


class StateStore(abc.ABC):
    """One interface, one contract suite, two adapters (memory, DynamoDB)."""

    backfills: BackfillStore
    """Each adapter's backfills table (store.backfills), beside its runs."""
    deadlines: DeadlineStore
    """Each run's deadline alerts (store.deadlines), in the dags table's due index."""

    # ------------------------------------------------------------ DAGs

    @abc.abstractmethod
    def upsert_dag(self, record: DagRecord) -> None:
        """Write a DAG's mutable row (deploy, pause, next due time)."""

    @abc.abstractmethod
    def get_dag(self, dag_id: str) -> DagRecord | None: ...

    @abc.abstractmethod
    def due_dags(self, now: dt.datetime) -> list[str]:
        """Ids of active, unpaused DAGs whose next due time is at or before ``now``."""

    @abc.abstractmethod
    def put_dag_version(self, record: DagVersionRecord) -> bool:
        """Create a version once; False when this hash already existed (nothing changes)."""

    @abc.abstractmethod
    def get_dag_version(self, dag_id: str, version: str) -> DagVersionRecord | None: ...

    # ------------------------------------------------------------ runs

    @abc.abstractmethod
    def create_run(self, run: DagRun, spec: DagSpec) -> bool:
        """Create a run once (run ids are deterministic); False if it already existed."""

    @abc.abstractmethod
    def get_run(self, dag_id: str, run_id: str) -> DagRun | None: ...

    @abc.abstractmethod
    def run_progress(self, dag_id: str, run_id: str) -> RunProgress: ...

    @abc.abstractmethod
    def active_runs(self, dag_id: str) -> list[ActiveRun]:
        """The DAG's queued and running runs (read through the runs-by-state index)."""

    @abc.abstractmethod
    def running_runs(self) -> list[ActiveRun]:
        """Every RUNNING run (through the runs-by-state index), for the tick's checks."""

    @abc.abstractmethod
    def check_stalled(
        self, dag_id: str, run_id: str, now: dt.datetime, stall: dt.timedelta
    ) -> bool:
        """True (once per stall period, for one caller) when the run's finished
        counter has not moved since a check at least ``stall`` ago.

        A moving counter just records itself; the first check only records.
        """

    @abc.abstractmethod
    def start_run(self, dag_id: str, run_id: str, now: dt.datetime) -> bool:
        """QUEUED -> RUNNING; False when the run was not queued."""

    @abc.abstractmethod
    def finish_run(self, dag_id: str, run_id: str, state: DagRunState, now: dt.datetime) -> bool:
        """RUNNING -> ``state``; False when the run was not running (someone finished it)."""

    @abc.abstractmethod
    def reopen_run(self, dag_id: str, run_id: str, expected: DagRunState) -> bool:
        """A finished run (``expected``) goes back to QUEUED because an operator
        cleared some of its instances; False when it was not in ``expected``."""

    @abc.abstractmethod
    def restate_run(
        self, dag_id: str, run_id: str, expected: DagRunState, new: DagRunState, now: dt.datetime
    ) -> bool:
        """An operator marks a run ``new`` (success or failed) from ``expected``,
        whatever the engine would decide; False when the run was not in ``expected``."""

    # ------------------------------------------------------- instances

    @abc.abstractmethod
    def runs_by_logical_date(
        self,
        dag_id: str,
        *,
        before: dt.datetime | None = None,
        after: dt.datetime | None = None,
        limit: int = 1,
    ) -> list[DagRun]:
        """Up to ``limit`` runs with a logical date strictly before ``before``
        (latest first) or strictly after ``after`` (earliest first), through the
        by-logical-date index: what depends_on_past reads (scheduler.past)."""

    @abc.abstractmethod
    def run_view(self, dag_id: str, run_id: str, spec: DagSpec) -> RunStateView:
        """The engine's view of one run; each ``summaries`` call is one batch read."""

    @abc.abstractmethod
    def get_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> TaskInstance | None:
        """The stored instance; None when it has no record (state NONE)."""

    @abc.abstractmethod
    def apply(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        commands: Sequence[Command],
        now: dt.datetime,
        on_taken: Callable[[Command], None] | None = None,
    ) -> list[Command]:
        """Apply the engine's commands with conditional writes.

        Returns, in order, the commands that took effect: every write that
        won its condition (dispatch only those ScheduleTask), every StartTimer
        and FinishRun (no write here; the caller acts on them), plus a
        FinishRun of the counters' verdict when these writes finished the
        run's last instance. Lost conditions are skipped, not errors.
        ``on_taken`` is called with each write that won, as soon as it won, so a
        fan-out's first try is dispatched before the rest are written.
        """

    def transition(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        task_id: str,
        map_index: int,
        *,
        expected: TaskState,
        new: TaskState,
        try_number: int,
        now: dt.datetime,
        read_outcome: bool = True,
        defer_counters: bool = False,
        releases: tuple[str, ...] = (),
        manual: bool = False,
        token: str | None = None,
        **changes: Any,
    ) -> TransitionResult:
        """A worker-side change of one try (claim, heartbeat-free result, requeue).

        ``changes`` may set queued_at, start_date, end_date, next_try_at,
        error, result_length and skip_downstream. Entering RUNNING takes no
        heartbeat lease (the worker's first ``heartbeat`` does); any change
        drops the lease.
        ``read_outcome=False`` skips reading the run's counters after a
        finishing change (a worker that will check them later, off its
        hand-off path); ``run_outcome`` is then None.
        ``defer_counters=True`` makes the change one conditional write of the
        instance alone; the caller then calls ``settle_counters`` with the
        returned ``pending`` write. A crash in between leaves the counters
        short, which ``recount`` (run by reconciliation of a stalled run) repairs.
        ``releases`` are slots ("key|amount") the try held: their counters move
        with the instance, atomically, never later. ``manual`` marks an operator's
        change (clear is NONE by the engine's rules; marks are checked apart).
        ``token`` names the write across a caller's own repeats of it (a worker
        that records its outcome again after an AWS error): a repeat that meets
        its earlier attempt's landed write counts as won (store.writes).
        """
        write = instance_write(
            spec,
            task_id,
            map_index,
            expected,
            try_number,
            new,
            now,
            dict(changes),
            releases,
            manual=manual,
        )
        if token is not None:
            write = replace(write, token=token)
        return self._transition(
            dag_id, run_id, spec, write, read_outcome=read_outcome, defer_counters=defer_counters
        )

    @abc.abstractmethod
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
        """Apply a worker-side write built by ``transition``."""

    def claim(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        task_id: str,
        map_index: int,
        try_number: int,
        now: dt.datetime,
        *,
        direct: bool = False,
        token: str | None = None,
    ) -> TransitionResult:
        """A worker starts try ``try_number``: QUEUED -> RUNNING, its start time set
        and no heartbeat lease yet (its first ``heartbeat`` takes it). ``direct``
        claims a try the hand-off dispatched without queueing it: NONE (never
        tried at ``try_number - 1``) -> RUNNING. Lost (``won=False``) when anyone
        else started, queued or skipped the try first."""
        write = claim_write(spec, task_id, map_index, try_number, now, direct=direct)
        if token is not None:  # as for transition: the caller's repeats are one write
            write = replace(write, token=token)
        return self._claim(dag_id, run_id, spec, write)

    @abc.abstractmethod
    def _claim(
        self, dag_id: str, run_id: str, spec: DagSpec, write: InstanceWrite
    ) -> TransitionResult:
        """Apply a claim built by ``claim``; the result carries the claimed instance."""

    @abc.abstractmethod
    def settle_counters(self, dag_id: str, run_id: str, pending: Any) -> Settled:
        """Move the run counters (and, for a mapped instance, its map's tally;
        for a task wide joins count, their counts) a deferred transition owes,
        once however often the call is retried, and answer with the values
        after the move: the run's counters, the map's count and tallies and
        the joins' counts, so the hand-off decides a fan-in from them."""

    def settle_floor(self, dag_id: str, run_id: str) -> int | None:
        """How many counter settles the run has had, read before a try records
        its outcome; None where a settle's answer is never lost (in memory)."""
        return None

    def tidy_settles(self) -> None:
        """Housekeeping the settles of this process owe (store.settles), done by
        the worker once the next try is on its way; nothing to do in memory."""
        return None

    @abc.abstractmethod
    def recount(self, dag_id: str, run_id: str, spec: DagSpec) -> RunProgress:
        """Recompute tallies and run counters from the instances themselves and store
        them. Only for a stalled run (no concurrent writers to race with).
        """

    def defer_dispatch(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        task_id: str,
        map_index: int,
        try_number: int,
        now: dt.datetime,
        *,
        until: dt.datetime | None = None,
    ) -> bool:
        """A queued try whose dispatch failed for now (throttled, unreachable) stays
        QUEUED and enters the heartbeat index as if it had beaten long ago, so the
        next tick's reaper finds it at once and dispatches it again. It never
        started, so it uses no retry; the reaper tells it from a silent worker by
        its state (QUEUED, not RUNNING). False when the try is no longer queued.

        ``until``: a backoff timer dispatches it again then (scheduler.start_backoff);
        the reaper stays the fallback, a heartbeat timeout after that. Its
        ``queued_at`` restarts, so reconciliation's queued timeout does not
        dispatch it as lost meanwhile (which would restart the attempt count)."""
        fields: dict[str, Any] = {} if until is None else {"queued_at": now}
        heartbeat = DISPATCH_AGAIN if until is None else until
        return self._update_queued(
            dag_id, run_id, spec, task_id, map_index, try_number, now, fields, heartbeat
        )

    def record_executor_id(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        task_id: str,
        map_index: int,
        try_number: int,
        external_id: str,
        now: dt.datetime,
    ) -> bool:
        """Note where a queued try was started (an ECS task ARN) on the try itself;
        False when it is no longer that queued try (its worker claimed it first)."""
        fields = {"external_executor_id": external_id}
        return self._update_queued(
            dag_id, run_id, spec, task_id, map_index, try_number, now, fields
        )

    def _update_queued(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        task_id: str,
        map_index: int,
        try_number: int,
        now: dt.datetime,
        fields: dict[str, Any],
        heartbeat: Any = None,
    ) -> bool:
        """Change fields of a try that stays QUEUED, on the condition that it still is."""
        write = instance_write(
            spec, task_id, map_index, TaskState.QUEUED, try_number, TaskState.QUEUED, now, fields
        )
        if heartbeat is not None:
            write = replace(write, heartbeat=heartbeat)
        return self._transition(
            dag_id, run_id, spec, write, read_outcome=False, defer_counters=False
        ).won

    # ------------------------------------------------------------ slots

    def acquire(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        task_id: str,
        map_index: int,
        try_number: int,
        claims: tuple[SlotClaim, ...],
        now: dt.datetime,
    ) -> bool:
        """SCHEDULED -> QUEUED and take every claim's slots, all or nothing.

        False when the try is no longer waiting or some counter is full; the
        try then stays SCHEDULED in the waiting index. The slots go back with
        the write that ends the try (``releases`` of a transition, or a
        SetTaskState's ``held_slots``), in the same transaction.
        """
        if any(c.limit - c.amount < 0 for c in claims):
            return False  # a pool that does not exist (or is too small) never has room
        write = acquire_write(spec, task_id, map_index, try_number, claims, now)
        return self._acquire(dag_id, run_id, spec, write, claims)

    @abc.abstractmethod
    def _acquire(
        self,
        dag_id: str,
        run_id: str,
        spec: DagSpec,
        write: InstanceWrite,
        claims: tuple[SlotClaim, ...],
    ) -> bool:
        """Apply the try's SCHEDULED -> QUEUED write and every claim, all or nothing."""

    @abc.abstractmethod
    def waiting(self, key: str, limit: int) -> list[tuple[str, TaskInstance]]:
        """Tries waiting for a slot of counter ``key``, best priority first,
        with their "dag_id#run_id" key."""

    @abc.abstractmethod
    def drop_idle_counters(self, keys: Sequence[str]) -> None:
        """Delete these slot counters where no try holds a slot: a finished run's
        own (``dagrun:``, ``runtask:``) would otherwise stay behind forever."""

    @abc.abstractmethod
    def set_pool(self, name: str, slots: int) -> None:
        """Create or resize a pool (an operator's action)."""

    @abc.abstractmethod
    def pools(self) -> dict[str, int]:
        """Configured pools and their slots."""

    @abc.abstractmethod
    def heartbeat(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        try_number: int,
        now: dt.datetime,
    ) -> bool:
        """Refresh a running try's heartbeat, the first beat putting it in the
        heartbeat index (the lease); False when the try is no longer running."""

    @abc.abstractmethod
    def stale_running(self, older_than: dt.datetime) -> list[tuple[str, TaskInstance]]:
        """Tries in the heartbeat index older than ``older_than``, with their
        "dag_id#run_id" key, for the reaper: RUNNING tries whose worker stopped
        beating (after beating once: one lost before its first beat is not
        here, reconciliation finds it, see core.engine), and QUEUED tries
        waiting to be dispatched again (``defer_dispatch``)."""
