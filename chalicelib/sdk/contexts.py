"""The ``with DAG(...)`` and ``with TaskGroup(...)`` blocks currently open.

Per thread: each DAG file is imported on a thread of its own (see
``import_timeout``), and an import abandoned at its timeout may still unwind
later, while the next file loads; it must only close its own blocks. It lives
apart from dag.py and taskgroup.py so both can read it without importing each
other.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.sdk.dag import DAG
    from chalicelib.sdk.setup_teardown import SetupTeardownScope
    from chalicelib.sdk.taskgroup import TaskGroup


class _Open(threading.local):
    def __init__(self) -> None:
        self.dags: list[DAG] = []
        self.groups: list[TaskGroup] = []
        # DAGs opened with ``with`` while a file loads: the loader picks them up even
        # when the file keeps no global reference to them (Airflow auto-registers too).
        self.collectors: list[list[DAG]] = []
        self.scopes: list[SetupTeardownScope] = []  # open ``with setup/teardown:`` blocks


_open = _Open()


def push_dag(dag: DAG) -> None:
    _open.dags.append(dag)
    for collected in _open.collectors:
        if not any(d is dag for d in collected):
            collected.append(dag)


def pop_dag() -> None:
    _open.dags.pop()


def current_dag() -> DAG | None:
    return _open.dags[-1] if _open.dags else None


def push_group(group: TaskGroup) -> None:
    _open.groups.append(group)


def pop_group() -> None:
    _open.groups.pop()


def current_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost open group of ``dag``; its root group when none is open."""
    if dag is None:
        return None
    for group in reversed(_open.groups):
        if group.dag is dag:
            return group
    return dag.task_group


def push_scope(scope: SetupTeardownScope) -> None:
    _open.scopes.append(scope)


def pop_scope() -> SetupTeardownScope:
    return _open.scopes.pop()


def current_scope() -> SetupTeardownScope | None:
    return _open.scopes[-1] if _open.scopes else None


def start_collecting() -> list[DAG]:
    collected: list[DAG] = []
    _open.collectors.append(collected)
    return collected


def stop_collecting(collected: list[DAG]) -> None:
    _open.collectors.remove(collected)


def snapshot() -> tuple[int, int]:
    return len(_open.dags), len(_open.groups)


def restore(depths: tuple[int, int]) -> None:
    """Close blocks a DAG file left open (it entered a DAG by hand and then raised)."""
    del _open.dags[depths[0] :]
    del _open.groups[depths[1] :]
    _open.scopes.clear()  # only a DAG file's own code opens them
