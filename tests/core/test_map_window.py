"""The window arithmetic of core.map_window."""

from __future__ import annotations

from chalicelib.core.map_window import admitted, finished_count, next_index, window_size
from chalicelib.core.runs import TaskInstance
from chalicelib.core.slots import SlotClaim, dag_run_key, pool_key, run_task_key, task_key
from chalicelib.core.states import TaskState

RUN = dag_run_key("d", "r")


def test_no_binding_limit_needs_no_window() -> None:
    assert window_size((), 100, 102) is None


def test_max_active_tasks_leaves_the_map_what_overlapping_tries_do_not_take() -> None:
    alone = (SlotClaim(RUN, 1, 16),)
    assert window_size(alone, 100, 100) == 16
    assert window_size(alone, 100, 103) == 13  # three other tries can run alongside
    assert window_size(alone, 100, 116) is None  # nothing left: slots decide


def test_the_smallest_run_local_limit_wins() -> None:
    claims = (SlotClaim(RUN, 1, 16), SlotClaim(run_task_key("d", "r", "t"), 1, 4))
    assert window_size(claims, 100, 100) == 4


def test_limits_shared_across_runs_keep_their_counters() -> None:
    for shared in (SlotClaim(pool_key("p"), 1, 4), SlotClaim(task_key("d", "t"), 1, 4)):
        assert window_size((SlotClaim(RUN, 1, 16), shared), 100, 100) is None


def test_each_finished_try_starts_the_next_index_once() -> None:
    started = [next_index(3, f, 8) for f in range(1, 9)]
    assert started == [3, 4, 5, 6, 7, None, None, None]
    assert next_index(3, 0, 8) is None


def test_finished_count_counts_finished_states_only() -> None:
    counts = {TaskState.SUCCESS: 4, TaskState.FAILED: 1, TaskState.UP_FOR_RETRY: 2}
    assert finished_count(counts) == 5


def test_reconciliation_admits_the_lowest_unstarted_while_the_window_has_room() -> None:
    def ti(index: int, state: TaskState) -> TaskInstance:
        return TaskInstance(task_id="t", map_index=index, state=state)

    under_way = [ti(0, TaskState.RUNNING), ti(2, TaskState.UP_FOR_RETRY)]
    never = [ti(i, TaskState.NONE) for i in (7, 3, 5)]
    assert admitted(4, under_way + never) == {3, 5}
    assert admitted(2, under_way + never) == set()
    assert admitted(1, under_way + never) == set()
