"""Maps held to a run-local limit run through a window (core.map_window).

Three places decide which of such a map's indices start:

- its expansion (``through_windows``, on the way to the store) picks the
  window, stores it with the map's count and starts the first ``W``
  indices; none of its tries claims a slot;
- a finished index (``window_follow_ups``, on a TaskFinished) starts the one
  its place in the map's tally names, read from the settle the hand-off
  already made, so the hand-off stays record, settle, invoke;
- reconciliation (a Reconcile) starts the lowest indices that never ran
  while fewer than ``W`` are under way, which repairs an index left
  unstarted by a lost answer or an operator's clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chalicelib.core.commands import (
    Command,
    Event,
    ExpandTask,
    Reconcile,
    RunStateView,
    ScheduleTask,
    TaskFinished,
)
from chalicelib.core.evaluation import schedule
from chalicelib.core.group_mapping import map_group
from chalicelib.core.map_window import admitted, finished_count, next_index, window_size
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.slots import UNBOUNDED, SlotClaim, task_width_bound
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.scheduler.scheduler_state import SchedulerState


class MapWindows(SchedulerState):
    def through_windows(
        self,
        spec: DagSpec,
        run: DagRun,
        schedules: list[ScheduleTask],
        commands: list[Command],
        view: RunStateView | None,
    ) -> tuple[list[ScheduleTask], list[Command]]:
        """Tries of windowed maps claim nothing; an expanding map that can run
        through a window gets one, and only its first ``W`` indices start now."""
        candidates = {
            c.task_id
            for c in schedules
            if c.claims and c.map_index >= 0 and map_group(spec.task(c.task_id)) is None
        }
        if not candidates:
            return schedules, commands
        expanding = {
            c.task_id: c for c in commands if isinstance(c, ExpandTask) and c.task_id in candidates
        }
        windows: dict[str, int] = {}
        opened: dict[str, ExpandTask] = {}
        for tid, expansion in expanding.items():
            claims = next(c.claims for c in schedules if c.task_id == tid)
            window = self._choose_window(spec, run, expansion, claims, commands, view)
            if window is not None:
                windows[tid] = window
                opened[tid] = replace(expansion, window=window)
        stored = sorted(candidates - set(expanding))
        if stored:
            known = (view or self.store.run_view(run.dag_id, run.run_id, spec)).summaries(stored)
            windows.update({t: s.window for t, s in known.items() if s.window is not None})
        if not windows:
            return schedules, commands
        kept: list[ScheduleTask] = []
        for cmd in schedules:
            window = windows.get(cmd.task_id)
            if window is None:
                kept.append(cmd)
            elif cmd.task_id not in opened or cmd.map_index < window:
                kept.append(replace(cmd, claims=()))
            # else: it starts when the map's finished tries reach it
        commands = [opened.get(c.task_id, c) if isinstance(c, ExpandTask) else c for c in commands]
        return kept, commands

    def _choose_window(
        self,
        spec: DagSpec,
        run: DagRun,
        expansion: ExpandTask,
        claims: tuple[SlotClaim, ...],
        commands: Sequence[Command],
        view: RunStateView | None,
    ) -> int | None:
        """The window for a map expanding now, from how many tries of the run
        can overlap it (its own count and every map it can overlap known)."""
        counts = {c.task_id: c.count for c in commands if isinstance(c, ExpandTask)}
        bound = task_width_bound(spec, expansion.task_id, counts)
        if bound >= UNBOUNDED:
            missing = [t for t, task in spec.tasks.items() if task.mapping and t not in counts]
            known = (view or self.store.run_view(run.dag_id, run.run_id, spec)).summaries(missing)
            counts.update({t: s.mapped_count for t, s in known.items() if s.mapped_count})
            bound = task_width_bound(spec, expansion.task_id, counts)
        return window_size(claims, expansion.count, bound)

    def window_follow_ups(
        self,
        spec: DagSpec,
        event: Event,
        view: RunStateView,
        commands: list[Command],
    ) -> list[Command]:
        """The engine's commands, with what windowed maps need after ``event``."""
        if isinstance(event, TaskFinished) and event.map_index >= 0:
            return commands + self._next_in_window(spec, event, view)
        if isinstance(event, Reconcile):
            return self._admit_reconciled(spec, view, commands)
        return commands

    def _next_in_window(
        self, spec: DagSpec, event: TaskFinished, view: RunStateView
    ) -> list[Command]:
        task = spec.task(event.task_id)
        if task.mapping is None or map_group(task) is not None:
            return []
        summary = view.summaries([task.task_id])[task.task_id]
        if summary.window is None or summary.mapped_count is None:
            return []
        finished = view.instance(task.task_id, event.map_index)
        if finished is None or not finished.state.finished:
            return []  # a retry or a poke to come keeps its place
        done = finished_count(summary.state_counts)
        index = next_index(summary.window, done, summary.mapped_count)
        if index is None:
            return []
        # Its first try, as the expansion would have started it; if an operator's
        # clear left it at a later try, the claim fails and reconciliation starts it.
        ti = TaskInstance(task_id=task.task_id, map_index=index, try_number=0)
        return [schedule(spec, task, ti)]

    def _admit_reconciled(
        self, spec: DagSpec, view: RunStateView, commands: list[Command]
    ) -> list[Command]:
        first_tries = {
            c.task_id
            for c in commands
            if isinstance(c, ScheduleTask) and c.map_index >= 0 and c.expected is TaskState.NONE
        }
        if not first_tries:
            return commands
        windows = {
            tid: s.window
            for tid, s in view.summaries(sorted(first_tries)).items()
            if s.window is not None
        }
        if not windows:
            return commands
        unfinished = [ti for ti in view.unfinished() if ti.task_id in windows and ti.map_index >= 0]
        allowed = {
            tid: admitted(window, (ti for ti in unfinished if ti.task_id == tid))
            for tid, window in windows.items()
        }
        return [
            c
            for c in commands
            if not (
                isinstance(c, ScheduleTask)
                and c.task_id in allowed
                and c.expected is TaskState.NONE
                and c.map_index not in allowed[c.task_id]
            )
        ]
