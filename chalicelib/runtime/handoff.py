"""The worker's view of its run right after recording an outcome.

The hand-off (success recorded -> next task dispatched) is the latency users
feel between dependent tasks, so it reads nothing it can know already:

- the task that just finished is known: the worker wrote it;
- an unmapped direct downstream task that is not itself an upstream of
  another candidate is assumed to be waiting (NONE, never tried). If that is
  wrong (another scheduler already queued it), the conditional write of the
  engine's command loses and nothing is dispatched twice. An assumed NONE can
  only make the engine wait, never decide wrongly, and a mapped task is never
  assumed (its expansion must be read).

Everything else (the other upstreams of a fan-in) is read as usual, in one
batch. For a chain this makes the hand-off three AWS calls: record the
outcome, queue the next try, invoke its worker.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from chalicelib.core.engine import RunStateView, TaskSummary
from chalicelib.core.runs import TaskInstance
from chalicelib.core.spec import DagSpec
from chalicelib.core.trigger_rules import TriggerRule


class HandOffView:
    def __init__(self, spec: DagSpec, inner: RunStateView, finished: TaskInstance):
        self._inner = inner
        self._known = {finished.task_id: TaskSummary(finished)} if finished.map_index < 0 else {}
        downstream = spec.tasks[finished.task_id].downstream
        upstream_of_candidates = {up for d in downstream for up in spec.tasks[d].upstream}
        self._assumed_waiting = {
            d
            for d in downstream
            if spec.tasks[d].mapping is None
            and spec.tasks[d].trigger_rule is not TriggerRule.ALWAYS
            and d not in upstream_of_candidates
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

    def instance(self, task_id: str, map_index: int) -> TaskInstance | None:
        return self._inner.instance(task_id, map_index)

    def unfinished(self) -> Iterable[TaskInstance]:
        return self._inner.unfinished()
