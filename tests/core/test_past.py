"""depends_on_past / wait_for_downstream in the pure engine, with a fake past view."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

import pytest

from chalicelib.core.engine import (
    PastChanged,
    RunStarted,
    ScheduleTask,
    SetTaskState,
    TaskFinished,
    TaskSummary,
    decide,
)
from chalicelib.core.past import NO_HISTORY, PastUnavailable
from chalicelib.core.runs import DagRun, RunType, TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.local.run_state import InMemoryRunState
from tests.core.simulation import T0, make_spec, manual_run, running_state

DAY = dt.timedelta(days=1)


@dataclass
class FakePrevious:
    run: DagRun
    states: dict[str, TaskState]
    mapped: dict[str, dict[TaskState, int]] = field(default_factory=dict)
    reads: list[tuple[str, ...]] = field(default_factory=list)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.states or task_id in self.mapped

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        self.reads.append(tuple(task_ids))
        found: dict[str, TaskSummary] = {}
        for tid in task_ids:
            if tid in self.mapped:
                counts = self.mapped[tid]
                found[tid] = TaskSummary(
                    TaskInstance(tid), mapped_count=sum(counts.values()), state_counts=counts
                )
            elif tid in self.states:
                found[tid] = TaskSummary(TaskInstance(tid, state=self.states[tid]))
        return found


@dataclass
class FakePast:
    previous: FakePrevious | None
    first_of_backfill: bool = False
    asked: list[bool] = field(default_factory=list)

    def previous_run(self, run: DagRun, *, scheduled_only: bool) -> FakePrevious | None:
        self.asked.append(scheduled_only)
        return self.previous

    def first_in_backfill(self, run: DagRun) -> bool:
        return self.first_of_backfill


def dop_spec(**options: object) -> DagSpec:
    """extract >> load >> report, with ``load`` depending on the past."""
    return make_spec(
        {"extract": ["load"], "load": ["report"]},
        load={"depends_on_past": True, **options},
    )


def previous(states: dict[str, TaskState], **mapped: dict[TaskState, int]) -> FakePrevious:
    run = replace(manual_run(dop_spec(), "scheduled__prev"), logical_date=T0 - DAY)
    return FakePrevious(run, states, dict(mapped))


def finish(state: InMemoryRunState, task_id: str, final: TaskState) -> None:
    """Take ``task_id`` through a try to ``final``, as a worker would."""
    path = [TaskState.NONE, TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING, final]
    for before, after in itertools.pairwise(path):
        state.transition(task_id, -1, before, after)


def scheduled(ids: list) -> list[str]:
    return [c.task_id for c in ids if isinstance(c, ScheduleTask)]


def after_extract(spec: DagSpec, past: object) -> list:
    """The commands once ``extract`` succeeded in the current run."""
    state = running_state(spec)
    finish(state, "extract", TaskState.SUCCESS)
    return decide(spec, state.run, TaskFinished("extract"), state, T0, past)  # type: ignore[arg-type]


ALL_DONE = {"extract": TaskState.SUCCESS, "load": TaskState.SUCCESS, "report": TaskState.SUCCESS}


def test_past_met_runs_the_task() -> None:
    assert scheduled(after_extract(dop_spec(), FakePast(previous(ALL_DONE)))) == ["load"]


@pytest.mark.parametrize("state", [TaskState.SUCCESS, TaskState.SKIPPED])
def test_success_and_skipped_both_satisfy_the_past(state: TaskState) -> None:
    past = FakePast(previous({**ALL_DONE, "load": state}))
    assert scheduled(after_extract(dop_spec(), past)) == ["load"]


@pytest.mark.parametrize(
    "state",
    [
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
        TaskState.RUNNING,
        TaskState.NONE,
        TaskState.UP_FOR_RETRY,
    ],
)
def test_past_not_met_leaves_the_task_waiting_with_no_command(state: TaskState) -> None:
    commands = after_extract(dop_spec(), FakePast(previous({**ALL_DONE, "load": state})))
    assert commands == []  # no state written: the task stays NONE, as Airflow shows it


def test_the_first_run_has_no_past() -> None:
    assert scheduled(after_extract(dop_spec(), FakePast(None))) == ["load"]
    assert scheduled(after_extract(dop_spec(), NO_HISTORY)) == ["load"]


def test_a_task_new_since_the_previous_run_waits_unless_ignore_first_depends_on_past() -> None:
    before = previous({"extract": TaskState.SUCCESS})  # that version had no "load"
    assert after_extract(dop_spec(), FakePast(before)) == []
    spec = dop_spec(ignore_first_depends_on_past=True)
    assert scheduled(after_extract(spec, FakePast(before))) == ["load"]


def test_ignore_first_depends_on_past_does_not_ignore_a_failed_past() -> None:
    spec = dop_spec(ignore_first_depends_on_past=True)
    assert after_extract(spec, FakePast(previous({**ALL_DONE, "load": TaskState.FAILED}))) == []


def test_wait_for_downstream_needs_the_previous_runs_direct_downstream() -> None:
    spec = dop_spec(wait_for_downstream=True)
    running = FakePast(previous({**ALL_DONE, "report": TaskState.RUNNING}))
    assert after_extract(spec, running) == []
    skipped = FakePast(previous({**ALL_DONE, "report": TaskState.SKIPPED}))
    assert scheduled(after_extract(spec, skipped)) == ["load"]


def test_wait_for_downstream_reads_only_direct_downstream_tasks() -> None:
    spec = make_spec(
        {"a": ["b"], "b": ["c"]},
        a={"depends_on_past": True, "wait_for_downstream": True},
    )
    before = previous({"a": TaskState.SUCCESS, "b": TaskState.SUCCESS, "c": TaskState.FAILED})
    state = running_state(spec)
    commands = decide(spec, state.run, RunStarted(), state, T0, FakePast(before))
    assert scheduled(commands) == ["a"]
    assert before.reads == [("a", "b")]


def test_mapped_past_needs_every_map_index() -> None:
    one_failed = {TaskState.SUCCESS: 3, TaskState.FAILED: 1}
    assert after_extract(dop_spec(), FakePast(previous(ALL_DONE, load=one_failed))) == []
    done = {TaskState.SUCCESS: 3, TaskState.SKIPPED: 1}
    assert scheduled(after_extract(dop_spec(), FakePast(previous(ALL_DONE, load=done)))) == ["load"]


def test_catchup_dags_look_for_the_previous_scheduled_run() -> None:
    past = FakePast(previous(ALL_DONE))
    after_extract(dop_spec(), past)
    after_extract(dop_spec().model_copy(update={"catchup": True}), past)
    assert past.asked == [False, True]


def test_the_first_run_of_a_backfill_ignores_the_past() -> None:
    spec = dop_spec()
    state = running_state(spec)
    state.run = replace(state.run, run_type=RunType.BACKFILL, backfill_id=7)
    finish(state, "extract", TaskState.SUCCESS)
    failed = previous({**ALL_DONE, "load": TaskState.FAILED})
    first = FakePast(failed, first_of_backfill=True)
    assert scheduled(decide(spec, state.run, TaskFinished("extract"), state, T0, first)) == ["load"]
    later = FakePast(failed, first_of_backfill=False)
    assert decide(spec, state.run, TaskFinished("extract"), state, T0, later) == []


def test_a_run_without_a_logical_date_has_no_previous_run() -> None:
    spec = dop_spec()
    state = running_state(spec)
    state.run = replace(state.run, logical_date=None)
    finish(state, "extract", TaskState.SUCCESS)
    failed = FakePast(previous({**ALL_DONE, "load": TaskState.FAILED}))
    assert scheduled(decide(spec, state.run, TaskFinished("extract"), state, T0, failed)) == [
        "load"
    ]
    assert failed.asked == []


def test_past_changed_evaluates_only_the_named_tasks_and_respects_upstream() -> None:
    spec = dop_spec()
    state = running_state(spec)
    met = FakePast(previous(ALL_DONE))
    # extract has not finished here: the past is met but the trigger rule still waits
    assert decide(spec, state.run, PastChanged(("load",)), state, T0, met) == []
    finish(state, "extract", TaskState.SUCCESS)
    assert scheduled(decide(spec, state.run, PastChanged(("load",)), state, T0, met)) == ["load"]
    assert decide(spec, state.run, PastChanged(("gone",)), state, T0, met) == []


def test_trigger_rule_skips_and_failures_do_not_wait_for_the_past() -> None:
    # Airflow's default wait_for_past_depends_before_skipping=False
    spec = dop_spec()
    state = running_state(spec)
    finish(state, "extract", TaskState.FAILED)
    failed = FakePast(previous({**ALL_DONE, "load": TaskState.FAILED}))
    commands = decide(spec, state.run, TaskFinished("extract"), state, T0, failed)
    assert [(c.task_id, c.state) for c in commands if isinstance(c, SetTaskState)] == [
        ("load", TaskState.UPSTREAM_FAILED),
        ("report", TaskState.UPSTREAM_FAILED),
    ]


def test_a_dag_with_past_dependencies_needs_a_past_view() -> None:
    spec = dop_spec()
    state = running_state(spec)
    finish(state, "extract", TaskState.SUCCESS)
    with pytest.raises(PastUnavailable, match="'load' depends on the past"):
        decide(spec, state.run, TaskFinished("extract"), state, T0)


def test_a_dag_without_past_dependencies_never_reads_the_past() -> None:
    spec = make_spec({"a": ["b"]})
    state = running_state(spec)
    past = FakePast(previous({}))
    assert scheduled(decide(spec, state.run, RunStarted(), state, T0, past)) == ["a"]
    assert past.asked == [] and spec.past_wakes == {}


def test_past_wakes_name_the_tasks_a_change_may_unblock() -> None:
    spec = make_spec(
        {"a": ["b", "c"], "b": ["d"]},
        a={"depends_on_past": True, "wait_for_downstream": True},
        d={"depends_on_past": True},
    )
    assert spec.past_wakes == {"a": ("a",), "b": ("a",), "c": ("a",), "d": ("d",)}


def test_a_repeated_wake_schedules_nothing_twice() -> None:
    spec = dop_spec()
    state = running_state(spec)
    finish(state, "extract", TaskState.SUCCESS)
    met = FakePast(previous(ALL_DONE))
    first = decide(spec, state.run, PastChanged(("load",)), state, T0, met)
    state.apply(first, T0)
    assert scheduled(first) == ["load"]
    assert decide(spec, state.run, PastChanged(("load",)), state, T0, met) == []


def test_wait_for_past_depends_before_skipping_holds_the_skip_until_the_past_is_met() -> None:
    spec = dop_spec(wait_for_past_depends_before_skipping=True)
    state = running_state(spec)
    finish(state, "extract", TaskState.FAILED)
    not_met = FakePast(previous({**ALL_DONE, "load": TaskState.RUNNING}))
    assert decide(spec, state.run, TaskFinished("extract"), state, T0, not_met) == []
    met = FakePast(previous(ALL_DONE))
    commands = decide(spec, state.run, PastChanged(("load",)), state, T0, met)
    assert [(c.task_id, c.state) for c in commands if isinstance(c, SetTaskState)] == [
        ("load", TaskState.UPSTREAM_FAILED),
        ("report", TaskState.UPSTREAM_FAILED),
    ]
