"""The worker's view of its run right after recording an outcome.

The hand-off (success recorded -> next task dispatched) is the latency users
feel between dependent tasks, so it reads nothing it can know already:

- the task that just finished is known: the worker wrote it;
- a direct downstream task that is not itself an upstream of another
  candidate is assumed to be waiting (NONE, never tried; a mapped one not
  yet expanded). If that is wrong (another scheduler already queued or
  expanded it), the conditional write of the engine's command loses, and
  the claim a worker must win decides who starts a directly dispatched try;
  tries of a map whose expansion was lost are not dispatched at all. The
  task's fate is decided from its upstream, which is real, so an assumed
  NONE can only repeat a decision, never change one.

- a mapped task that just finished an instance is known too: the worker's
  tally ADD answered with the task's fresh count and tallies;
- so are the counts of a wide join (core.fan_in) below the finished task:
  the same settle moved them and answered with them.

Everything else (the other upstreams of a small fan-in) is read as usual, in
one batch. With the direct dispatch of the next try (no queueing write, see
``Scheduler.advance``), a chain's hand-off is two AWS calls (record the
outcome, invoke the next worker) and a mapped fan-in's is three (record,
move the tally, invoke).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from chalicelib.core.engine import RunStateView, TaskSummary
from chalicelib.core.fan_in import FanInCounts
from chalicelib.core.runs import TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.trigger_rules import TriggerRule


class HandOffView:
    def __init__(
        self,
        spec: DagSpec,
        inner: RunStateView,
        finished: TaskInstance,
        mapped_summary: TaskSummary | None = None,
        fan_in: Mapping[str, FanInCounts] | None = None,
    ):
        self._inner = inner
        self._finished = finished
        self._fan_in = dict(fan_in or {})
        self._known: dict[str, TaskSummary] = {}
        if finished.map_index < 0:
            self._known[finished.task_id] = TaskSummary(finished)
        elif mapped_summary is not None:
            self._known[finished.task_id] = mapped_summary
        downstream = spec.tasks[finished.task_id].downstream
        candidates = set(downstream)
        # d is upstream of another candidate iff that candidate is below d:
        # asked that way, the cost follows the downstream tasks, never the
        # upstream tasks of a wide join below them.
        self._assumed_waiting = {
            d
            for d in downstream
            if spec.tasks[d].trigger_rule is not TriggerRule.ALWAYS
            and candidates.isdisjoint(spec.tasks[d].downstream)
            # a mapped group's task may be expanded already (core.group_mapping)
            and getattr(spec.tasks[d].mapping, "group", None) is None
        }

    def summaries(self, task_ids: Collection[str]) -> Mapping[str, TaskSummary]:
        result: dict[str, TaskSummary] = {}
        missing: list[str] = []
        for tid in task_ids:
            if tid in self._known:
                result[tid] = self._known[tid]
            elif tid in self._assumed_waiting:
                result[tid] = TaskSummary(TaskInstance(task_id=tid))
            else:
                missing.append(tid)
        if missing:
            result.update(self._inner.summaries(missing))
        return result

    @property
    def assumed_waiting(self) -> frozenset[str]:
        """The tasks assumed never tried: a lost schedule of one means the guess was
        wrong (an operator's clear left it at a later try); the scheduler then
        decides again from the store (``Scheduler._apply``)."""
        return frozenset(self._assumed_waiting)

    def fan_in(self, join_ids: Collection[str]) -> Mapping[str, FanInCounts]:
        result = {j: self._fan_in[j] for j in join_ids if j in self._fan_in}
        missing = [j for j in join_ids if j not in self._fan_in]
        if missing:
            result.update(self._inner.fan_in(missing))
        return result

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None:
        if (task_id, map_index) == self._finished.key:  # a mapped group's next index reads it
            return self._finished
        return self._inner.instance(task_id, map_index)

    def unfinished(self) -> Iterable[TaskInstance]:
        return self._inner.unfinished()
