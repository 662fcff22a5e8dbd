"""Setup and teardown tasks: which tasks a setup's scope holds, what the run state
looks at, and what a clear takes along (Airflow 3's rules, computed over a spec).

A setup's *teardowns* are its direct downstream tasks flagged ``is_teardown``.
A task is in a setup's *scope* when it is below the setup and above one of the
setup's teardowns (everything below the setup when it has no teardown): that
is Airflow's ``get_upstreams_only_setups_and_teardowns``. The scope decides two
things: a task in scope runs only once all its setups succeeded (Airflow's
implicit ALL_SUCCESS constraint on indirect setups), and clearing it clears its
setups and their teardowns.

Everything here is computed once per spec (DagSpec caches it) and costs
nothing for a DAG without setups.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from chalicelib.core.trigger_rules import TriggerRule, UpstreamCounts, Verdict

if TYPE_CHECKING:
    from chalicelib.core.spec import TaskSpec

Tasks = Mapping[str, "TaskSpec"]


def _walk(tasks: Tasks, start: str, direction: str) -> set[str]:
    """Every task strictly above (``upstream``) or below (``downstream``) ``start``."""
    found: set[str] = set()
    stack = [start]
    while stack:
        for other in getattr(tasks[stack.pop()], direction):
            if other in tasks and other not in found:
                found.add(other)
                stack.append(other)
    return found


def teardowns_of(tasks: Tasks, setup_id: str) -> list[str]:
    """A setup's teardowns: its direct downstream teardown tasks."""
    return [d for d in tasks[setup_id].downstream if d in tasks and tasks[d].is_teardown]


def setup_scopes(tasks: Tasks) -> dict[str, frozenset[str]]:
    """For each task in some setup's scope, the setups it is in scope of.

    Teardowns are left out (Airflow: a teardown has no indirect setups), and so
    is every task of a DAG without setups.
    """
    scopes: dict[str, set[str]] = {}
    for sid, setup in tasks.items():
        if not setup.is_setup:
            continue
        below = _walk(tasks, sid, "downstream")
        ends = teardowns_of(tasks, sid)
        if ends:
            above_ends: set[str] = set()
            for end in ends:
                above_ends |= _walk(tasks, end, "upstream")
            below &= above_ends
        for tid in below:
            if not tasks[tid].is_teardown:
                scopes.setdefault(tid, set()).add(sid)
    return {tid: frozenset(setups) for tid, setups in scopes.items()}


def indirect_setups(
    tasks: Tasks, scopes: Mapping[str, frozenset[str]]
) -> dict[str, tuple[str, ...]]:
    """The setups of a task's scope that are not its direct upstream, sorted.

    Direct setups are already counted by the task's trigger rule; the indirect
    ones add Airflow's implicit "all of them succeeded" constraint. A task with
    trigger rule ``always`` runs regardless, as in Airflow.
    """
    result: dict[str, tuple[str, ...]] = {}
    for tid, setups in scopes.items():
        task = tasks[tid]
        if task.trigger_rule is TriggerRule.ALWAYS:
            continue
        indirect = sorted(setups - set(task.upstream))
        if indirect:
            result[tid] = tuple(indirect)
    return result


def indirect_setup_verdict(c: UpstreamCounts) -> Verdict:
    """Airflow's implicit constraint on a task's indirect setups: a failed one fails
    the task (upstream_failed), a skipped one skips it, else it waits for all to succeed."""
    if c.failed or c.upstream_failed:
        return Verdict.UPSTREAM_FAILED
    if c.skipped:
        return Verdict.SKIP
    return Verdict.RUN if c.success >= c.total - c.removed else Verdict.WAIT


def setup_watchers(
    tasks: Tasks, indirect: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """Tasks to evaluate again when a setup finishes, beyond its direct downstream.

    A task with an indirect setup is normally evaluated when its direct
    upstream finishes, which cannot happen before the setup finished. It can
    when the path from the setup passes an ``always`` task (it starts with the
    run): such a task waits on the setup alone and must hear when it is done.
    """
    watchers: dict[str, list[str]] = {}
    by_setup: dict[str, list[str]] = {}
    for tid, setups in indirect.items():
        for sid in setups:
            by_setup.setdefault(sid, []).append(tid)
    for sid, waiting in by_setup.items():
        below = _walk(tasks, sid, "downstream")
        early = _finish_before(tasks, sid, below)
        for tid in waiting:
            if all(up in early or (up not in below and up != sid) for up in tasks[tid].upstream):
                watchers.setdefault(sid, []).append(tid)
    return {sid: tuple(sorted(tids)) for sid, tids in watchers.items()}


def _finish_before(tasks: Tasks, setup_id: str, below: set[str]) -> set[str]:
    """Tasks below ``setup_id`` that may finish while it has not: ``always`` tasks, and
    tasks whose every upstream may. One pass in topological order over ``below``."""
    waiting = {tid: sum(1 for u in tasks[tid].upstream if u in below) for tid in below}
    ready = [tid for tid, n in waiting.items() if n == 0]
    early: set[str] = set()
    while ready:
        tid = ready.pop()
        task = tasks[tid]
        if task.trigger_rule is TriggerRule.ALWAYS or all(
            u in early or (u not in below and u != setup_id) for u in task.upstream
        ):
            early.add(tid)
        for down in task.downstream:
            if down in waiting:
                waiting[down] -= 1
                if waiting[down] == 0:
                    ready.append(down)
    return early


def run_state_leaves(tasks: Tasks) -> frozenset[str]:
    """The tasks whose failure fails the run (Airflow's ``_tis_for_dagrun_state``).

    A teardown is ignored unless ``on_failure_fail_dagrun``; a task whose only
    downstream tasks are ignored teardowns counts as a leaf. Should nothing be
    left (a DAG of teardowns only), the plain leaves count.
    """

    def ignorable(tid: str) -> bool:
        task = tasks[tid]
        return task.is_teardown and not task.on_failure_fail_dagrun

    leaves = frozenset(
        tid
        for tid, task in tasks.items()
        if not ignorable(tid) and all(d in tasks and ignorable(d) for d in task.downstream)
    )
    if leaves:
        return leaves
    return frozenset(tid for tid, task in tasks.items() if not task.downstream)


def _scope_with_teardowns(
    tasks: Tasks, scopes: Mapping[str, frozenset[str]], task_id: str
) -> Iterator[str]:
    """A task's setups and their teardowns, the task itself excepted."""
    for sid in scopes.get(task_id, ()):
        yield sid
        yield from (t for t in teardowns_of(tasks, sid) if t != task_id)


def clear_extras(
    tasks: Tasks,
    scopes: Mapping[str, frozenset[str]],
    named: Iterable[str],
    related: set[str],
    *,
    upstream: bool,
    downstream: bool,
) -> set[str]:
    """What a clear of ``named`` takes along besides ``related`` (the named tasks and,
    as asked, everything up- or downstream), as Airflow's ``partial_subset`` does:

    - a task in a setup's scope: its setups and their teardowns;
    - with ``downstream``: the same for every task below a named one;
    - with ``upstream``: the teardowns of every setup above;
    - a setup cleared without its downstream: its teardowns.
    """
    named = set(named)
    extra: set[str] = set()

    def plain(tid: str) -> bool:
        return not tasks[tid].is_setup and not tasks[tid].is_teardown

    if downstream:
        below: set[str] = set()
        for tid in named:
            below |= _walk(tasks, tid, "downstream")
        for rel in below - named:
            if plain(rel):
                extra.update(_scope_with_teardowns(tasks, scopes, rel))
    for tid in named:
        if upstream:
            for up in _walk(tasks, tid, "upstream"):
                if tasks[up].is_setup:
                    extra.update(t for t in teardowns_of(tasks, up) if t != tid)
        elif plain(tid):
            extra.update(_scope_with_teardowns(tasks, scopes, tid))
        if tasks[tid].is_setup and not downstream:
            extra.update(teardowns_of(tasks, tid))
    return extra - related


def setup_teardown_messages(tasks: Tasks, task: TaskSpec) -> Iterator[str]:
    """Misuse Airflow refuses, said with what to do instead."""
    if task.is_setup and task.is_teardown:
        yield "a task cannot be both a setup and a teardown"
    if task.is_teardown and task.trigger_rule is not TriggerRule.ALL_DONE_SETUP_SUCCESS:
        yield (
            f"teardown task has trigger rule {task.trigger_rule.value!r}; a teardown always "
            "uses 'all_done_setup_success' (do not set trigger_rule on it)"
        )
    if task.on_failure_fail_dagrun and not task.is_teardown:
        yield "on_failure_fail_dagrun applies to teardown tasks only; use as_teardown(...)"
    if task.is_setup:
        for down in task.downstream:
            other = tasks.get(down)
            if other is None or other.is_teardown:
                continue
            if other.trigger_rule is not TriggerRule.ALL_SUCCESS:
                yield (
                    f"task {down!r} directly downstream of this setup has trigger rule "
                    f"{other.trigger_rule.value!r}; Airflow requires 'all_success' there "
                    "(put a task with the other rule further down)"
                )
