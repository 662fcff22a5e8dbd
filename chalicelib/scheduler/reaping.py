"""Reaping: tries whose worker went silent are failed (or retried) as
"worker heartbeat lost"; tries that never started are dispatched again as the
same try, using none of their retries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from chalicelib.core.engine import (
    HEARTBEAT_LOST,
    Command,
    FinishRun,
    RequeueTask,
    StartTimer,
    TaskFinished,
    fail_try,
)
from chalicelib.core.runs import DagRun, TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import TaskState
from chalicelib.scheduler.isolation import Failures, isolated
from chalicelib.scheduler.run_lifecycle import RunLifecycle


class Reaping(RunLifecycle):
    def reap(self, now: dt.datetime, failures: Failures | None = None) -> list[str]:
        """Fail (or retry) tries whose heartbeat went stale: their worker died.
        With ``failures``, a try that fails is logged there and the others go on."""
        return self._reap(now, failures)[0]

    def _reap(
        self, now: dt.datetime, failures: Failures | None = None
    ) -> tuple[list[str], list[str]]:
        """Tries in the heartbeat index past their time: (reaped, dispatched again).

        Only a RUNNING try had a worker that claimed it and went silent; it is
        failed (or retried) as "worker heartbeat lost". A QUEUED try there never
        started (its dispatch failed for now, see ``_dispatch``): it is dispatched
        again as the same try, using none of its retries."""
        reaped: list[str] = []
        redispatched: list[str] = []
        for key, ti in self.store.stale_running(now - self.heartbeat_timeout):
            dag_id, _, run_id = key.partition("#")
            with isolated(failures, f"reaping {dag_id}/{run_id}/{ti.label}"):
                outcome = self._reap_one(dag_id, run_id, ti, now)
                if outcome == "reaped":
                    reaped.append(f"{run_id}/{ti.label}")
                elif outcome == "redispatched":
                    redispatched.append(f"{run_id}/{ti.label}")
        return reaped, redispatched

    def redispatch_queued(self, run: DagRun, spec: DagSpec, task_ids: Sequence[str]) -> list[str]:
        """Dispatch again the QUEUED tries of these unmapped tasks. A hand-off AWS
        interrupted may have queued them and never dispatched them; the worker's
        claim keeps a try dispatched twice from running twice."""
        again: list[str] = []
        now = self.clock()
        for task_id in task_ids:
            task = spec.task(task_id)
            if task.mapping is not None:
                continue  # its instances wait for reconciliation
            ti = self.store.get_instance(run.dag_id, run.run_id, task_id, -1)
            if ti is None or ti.state is not TaskState.QUEUED:
                continue
            requeue = RequeueTask(task_id, -1, ti.try_number, task.executor)
            if self._apply(spec, run, [requeue], now):
                again.append(ti.label)
        return again

    def _reap_one(self, dag_id: str, run_id: str, ti: TaskInstance, now: dt.datetime) -> str | None:
        """ "reaped", "redispatched" or None (nothing to do any more)."""
        run = self.store.get_run(dag_id, run_id)
        if run is None:
            return None
        spec = self.specs.get(dag_id, run.version)
        if ti.state is TaskState.QUEUED:
            executor = spec.task(ti.task_id).executor
            again = RequeueTask(ti.task_id, ti.map_index, ti.try_number, executor)
            return "redispatched" if self._apply(spec, run, [again], now) else None
        commands = fail_try(spec, run, ti, now, reason=HEARTBEAT_LOST)
        effective = self._apply(spec, run, commands, now)
        if not any(_is_state_change(c) for c in effective):
            return None
        if ti.state is TaskState.RUNNING and _ended(commands):
            self.advance(run, spec, TaskFinished(ti.task_id, ti.map_index))
        return "reaped"

    def fail_lost_try(self, dag_id: str, run_id: str, ti: TaskInstance, reason: str) -> bool:
        """Fail (or retry, per its retries) a try whose worker died without recording
        an outcome, as ``ti`` was read; False when it has moved on since (a
        re-delivered report, or the worker recorded after all): nothing changes."""
        run = self.store.get_run(dag_id, run_id)
        if run is None:
            return False
        spec = self.specs.get(dag_id, run.version)
        now = self.clock()
        commands = fail_try(spec, run, ti, now, reason=reason)
        effective = self._apply(spec, run, commands, now)
        if not any(_is_state_change(c) for c in effective):
            return False
        if _ended(commands):
            self.advance(run, spec, TaskFinished(ti.task_id, ti.map_index))
        return True


def _is_state_change(cmd: Command) -> bool:
    return not isinstance(cmd, (StartTimer, FinishRun))


def _ended(commands: list[Command]) -> bool:
    return any(
        getattr(c, "state", None) in (TaskState.FAILED,) for c in commands if _is_state_change(c)
    )
