"""The ``with DAG(...)`` and ``with TaskGroup(...)`` blocks currently open.

DAG files are imported one at a time on one thread (loader, worker), so a
plain stack is enough; it lives apart from dag.py and taskgroup.py so both
can read it without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.sdk.dag import DAG
    from chalicelib.sdk.taskgroup import TaskGroup

_dags: list[DAG] = []
_groups: list[TaskGroup] = []
# DAGs opened with ``with`` while a file loads: the loader picks them up even
# when the file keeps no global reference to them (Airflow auto-registers too).
_opened_collectors: list[list[DAG]] = []


def push_dag(dag: DAG) -> None:
    _dags.append(dag)
    for collected in _opened_collectors:
        if not any(d is dag for d in collected):
            collected.append(dag)


def pop_dag() -> None:
    _dags.pop()


def current_dag() -> DAG | None:
    return _dags[-1] if _dags else None


def push_group(group: TaskGroup) -> None:
    _groups.append(group)


def pop_group() -> None:
    _groups.pop()


def current_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost open group of ``dag``; its root group when none is open."""
    if dag is None:
        return None
    for group in reversed(_groups):
        if group.dag is dag:
            return group
    return dag.task_group


def start_collecting() -> list[DAG]:
    collected: list[DAG] = []
    _opened_collectors.append(collected)
    return collected


def stop_collecting(collected: list[DAG]) -> None:
    _opened_collectors.remove(collected)


def snapshot() -> tuple[int, int]:
    return len(_dags), len(_groups)


def restore(depths: tuple[int, int]) -> None:
    """Close blocks a DAG file left open (it entered a DAG by hand and then raised)."""
    del _dags[depths[0] :]
    del _groups[depths[1] :]
