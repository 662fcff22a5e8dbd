"""Engine commands turned into guarded writes, shared by every store adapter.

Both adapters execute the same plan, so they cannot disagree on what a
command expects, what it sets and how it moves the counters.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.engine import (
    Command,
    ExpandTask,
    FinishRun,
    RequeueTask,
    ScheduleTask,
    SetTaskState,
    StartTimer,
)
from chalicelib.core.fan_in import FanInMove
from chalicelib.core.progress import RunProgress, expansion_delta, transition_delta
from chalicelib.core.runs import TaskInstance
from chalicelib.core.slots import SlotClaim, wait_rank
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState, check_mark, check_task_transition

INSTANCE_FIELDS = frozenset(
    {
        "try_number",
        "queued_at",
        "start_date",
        "end_date",
        "next_try_at",
        "error",
        "result_length",
        "rendered_map_index",
        "rendered_fields",
        "skip_downstream",
        "slots",
        "wait_key",
        "wait_rank",
        "retry_base",
        "infra_failures",
        "first_poke_at",
        "external_executor_id",
    }
)


@dataclass(frozen=True)
class InstanceWrite:
    """Move one instance from (``expected``, ``expected_try``) to ``new``.

    ``fields`` are TaskInstance attributes to overwrite (None clears).
    ``heartbeat`` puts the try in the heartbeat index at that time (a deferred
    dispatch's QUEUED try); None takes it out. A claim enters RUNNING without
    one: the worker's first heartbeat takes the lease (``StateStore.heartbeat``),
    so a try that ends before it never costs an index write.
    """

    task_id: str
    map_index: int
    expected: TaskState
    expected_try: int
    new: TaskState
    fields: dict[str, Any] = field(default_factory=dict)
    heartbeat: dt.datetime | None = None
    progress: RunProgress = field(default_factory=lambda: RunProgress(0))
    # Slots ("key|amount") this change gives back: their counters move in the
    # same transaction, so a crash can never keep a slot counted with no holder.
    releases: tuple[str, ...] = ()
    # Names this write on every retry of it (store.writes): how a retry that
    # meets its own earlier attempt knows it won, and what its counters settle by.
    token: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False, repr=False)
    # Steps of the wide joins' counts (core.fan_in) this write moves, on the
    # run item with the run counters: settled with them, exactly once.
    fan_in_moves: tuple[FanInMove, ...] = ()
    # The run's settle count read before this write was first tried: lets a
    # settle whose answer was lost tell whether it landed (store.settles).
    settle_floor: int | None = field(default=None, compare=False)

    @property
    def mapped(self) -> bool:
        return self.map_index >= 0

    @property
    def tally_moves(self) -> tuple[TaskState | None, TaskState | None]:
        """The placeholder tallies this write moves: (decrement, increment).

        Only finished states are tallied; an untallied mapped instance is
        unfinished, which is all the engine needs. So the hot path of a try
        (scheduled -> queued -> running) writes one item, and only the write
        that finishes an instance needs a transaction.
        """
        if not self.mapped:
            return None, None
        old = self.expected if self.expected.finished else None
        new = self.new if self.new.finished else None
        return old, new


@dataclass(frozen=True)
class ExpansionWrite:
    """Set a placeholder's mapped count once; its instances start as NONE."""

    task_id: str
    count: int
    progress: RunProgress
    window: int | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False, repr=False)


Write = InstanceWrite | ExpansionWrite


def instance_write(
    spec: DagSpec,
    task_id: str,
    map_index: int,
    expected: TaskState,
    expected_try: int,
    new: TaskState,
    now: dt.datetime,
    fields: dict[str, Any],
    releases: tuple[str, ...] = (),
    *,
    manual: bool = False,
) -> InstanceWrite:
    """``manual`` is an operator's mark (success/failed/skipped from any state),
    checked against the marks an operator may make instead of the engine's rules."""
    unknown = set(fields) - INSTANCE_FIELDS
    if unknown:
        raise TypeError(f"cannot set {sorted(unknown)} on a task instance")
    label = task_id if map_index < 0 else f"{task_id}[{map_index}]"
    if manual:
        check_mark(expected, new, label)
    else:
        check_task_transition(expected, new, label)
    return InstanceWrite(
        task_id=task_id,
        map_index=map_index,
        expected=expected,
        expected_try=expected_try,
        new=new,
        fields=fields,
        progress=transition_delta(spec, task_id, expected, new),
        releases=tuple(releases),
        fan_in_moves=spec.fan_ins.moves(task_id, map_index, expected, new),
    )


def plan(spec: DagSpec, command: Command, now: dt.datetime) -> Write | None:
    """The write a command needs; None for commands the caller acts on directly."""
    if isinstance(command, SetTaskState):
        fields: dict[str, Any] = {
            "next_try_at": command.next_try_at,
            "error": command.reason or None,
        }
        if command.expected is TaskState.SCHEDULED:
            fields.update(wait_key=None, wait_rank=None)  # leaves the waiting index
        if command.held_slots:
            fields["slots"] = ()  # given back in the same write (releases)
        if command.state.finished:
            fields["end_date"] = now
        return instance_write(
            spec,
            command.task_id,
            command.map_index,
            command.expected,
            command.try_number,
            command.state,
            now,
            fields,
            releases=command.held_slots,
        )
    if isinstance(command, ScheduleTask) and command.claims:
        # Limited: waits SCHEDULED (indexed by its first counter) until acquire().
        return instance_write(
            spec,
            command.task_id,
            command.map_index,
            command.expected,
            command.expected_try,
            TaskState.SCHEDULED,
            now,
            {
                **_new_try_fields(command),
                "next_try_at": None,
                "wait_key": command.claims[0].key,
                "wait_rank": wait_rank(command.priority, now.isoformat()),
            },
        )
    if isinstance(command, ScheduleTask):
        # Scheduled and queued in one write: whoever wins it dispatches the try.
        return instance_write(
            spec,
            command.task_id,
            command.map_index,
            command.expected,
            command.expected_try,
            TaskState.QUEUED,
            now,
            {**_new_try_fields(command), "next_try_at": None, "queued_at": now},
        )
    if isinstance(command, RequeueTask):
        # Same try, still QUEUED: whoever wins this write dispatches it again.
        return instance_write(
            spec,
            command.task_id,
            command.map_index,
            TaskState.QUEUED,
            command.try_number,
            TaskState.QUEUED,
            now,
            {"queued_at": now},
        )
    if isinstance(command, ExpandTask):
        return ExpansionWrite(
            command.task_id, command.count, expansion_delta(command.count), command.window
        )
    assert isinstance(command, (StartTimer, FinishRun))
    return None


def _new_try_fields(command: ScheduleTask) -> dict[str, Any]:
    """A new try starts its sensor timeout afresh; a reschedule keeps the first poke."""
    if command.same_try:
        return {"try_number": command.try_number}
    return {
        "try_number": command.try_number,
        "first_poke_at": None,
        "external_executor_id": None,
    }


def applied(ti: TaskInstance, write: InstanceWrite) -> TaskInstance:
    """The instance as it is after ``write`` succeeded (no heartbeat yet: a try
    beats only after its claim, and every write of it leaves the index)."""
    return ti.evolve(state=write.new, last_heartbeat_at=None, **write.fields)


def missing_instance(task_id: str, map_index: int) -> TaskInstance:
    """What an instance with no record is: waiting, never tried."""
    return TaskInstance(task_id=task_id, map_index=map_index)


def with_run_outcome(
    taken: list[Command], moved: bool, outcome: DagRunState | None, running: bool
) -> list[Command]:
    """Add the counters' verdict when our writes may have finished the run's last instance.

    Two writers that both see the final count both return FinishRun; the
    conditional ``finish_run`` lets exactly one of them win.
    """
    already = any(isinstance(c, FinishRun) for c in taken)
    if moved and outcome is not None and running and not already:
        return [*taken, FinishRun(outcome, "every task instance finished")]
    return taken


def count_instances(
    spec: DagSpec, mapped_count: dict[str, int], instances: list[TaskInstance]
) -> tuple[RunProgress, dict[str, dict[TaskState, int]]]:
    """Run counters and mapped tallies recomputed from the stored instances.

    Instances without a record are waiting (NONE); an expanded mapped task is
    counted by its indices, not by its placeholder.
    """
    total = len(spec.tasks) + sum(count - 1 for count in mapped_count.values())
    finished = failed = 0
    tallies: dict[str, dict[TaskState, int]] = {tid: {} for tid in mapped_count}
    for ti in instances:
        if ti.task_id not in spec.tasks:
            continue
        expanded = ti.task_id in mapped_count
        if expanded and ti.map_index < 0:
            continue
        if not expanded and ti.map_index >= 0:
            continue
        if not ti.state.finished:
            continue
        finished += 1
        leaf = ti.task_id in spec.run_state_leaves
        if leaf and ti.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED):
            failed += 1
        if expanded:
            counts = tallies[ti.task_id]
            counts[ti.state] = counts.get(ti.state, 0) + 1
    return RunProgress(total, finished, failed), tallies


def claim_write(
    spec: DagSpec,
    task_id: str,
    map_index: int,
    try_number: int,
    now: dt.datetime,
    *,
    direct: bool,
) -> InstanceWrite:
    """A worker's claim of try ``try_number``: QUEUED -> RUNNING, or NONE -> RUNNING
    for a directly dispatched try (never tried at ``try_number - 1``).

    Either way it is one conditional write, so of every worker handed the same
    try (a duplicate invoke, a hand-off racing the scheduler) exactly one starts it.
    """
    if direct:
        return instance_write(
            spec,
            task_id,
            map_index,
            TaskState.NONE,
            try_number - 1,
            TaskState.RUNNING,
            now,
            {"try_number": try_number, "queued_at": now, "start_date": now, "first_poke_at": None},
        )
    return instance_write(
        spec,
        task_id,
        map_index,
        TaskState.QUEUED,
        try_number,
        TaskState.RUNNING,
        now,
        {"start_date": now},
    )


def acquire_write(
    spec: DagSpec,
    task_id: str,
    map_index: int,
    try_number: int,
    claims: tuple[SlotClaim, ...],
    now: dt.datetime,
) -> InstanceWrite:
    """SCHEDULED -> QUEUED for a try whose slot claims the same transaction takes."""
    return instance_write(
        spec,
        task_id,
        map_index,
        TaskState.SCHEDULED,
        try_number,
        TaskState.QUEUED,
        now,
        {
            "queued_at": now,
            "slots": tuple(c.encode() for c in claims),
            "wait_key": None,
            "wait_rank": None,
        },
    )
