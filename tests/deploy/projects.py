"""A throwaway Slipstream project (dags/ + its own operators/), shared by deploy tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 3, 10, 12, 30, tzinfo=dt.UTC)

HELLO = """
import datetime as dt

from chalicelib.sdk import DAG, task
from operators.greeting import greeting

with DAG(
    "hello",
    schedule="@daily",
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
):
    @task
    def say() -> str:
        return greeting() + " from v1"

    say()
"""

EVENTS = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("on_demand", schedule=None):
    first = EmptyOperator(task_id="first")
    second = EmptyOperator(task_id="second")
    first >> second
"""


class Project:
    """A project folder laid out as ``slipstream dags deploy`` expects it."""

    def __init__(self, root: Path):
        self.root = root
        self.dags = root / "dags"

    def write(self, relative: str, source: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return path

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()


def make_project(root: Path) -> Project:
    """A copy of the operator library plus one operator and two DAGs of the project's own."""
    shutil.copytree(
        REPO_ROOT / "operators",
        root / "operators",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    made = Project(root)
    made.write("operators/greeting.py", 'def greeting() -> str:\n    return "hello"\n')
    made.write("dags/hello.py", HELLO)
    made.write("dags/on_demand.py", EVENTS)
    return made


@contextlib.contextmanager
def imports_restored() -> Iterator[None]:
    """Loading a bundle puts its root on sys.path and its modules in sys.modules for the
    rest of the process (as a warm worker wants); other tests must not see them."""
    saved_path = list(sys.path)
    saved_modules = dict(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        # Only what a bundle brought goes: a library or Slipstream module first
        # imported meanwhile stays, or a later import would make a second copy
        # of its classes and its process-wide state (the usage meter's wrap).
        for name in [n for n in sys.modules if n not in saved_modules]:
            if _from_a_bundle(sys.modules[name]):
                del sys.modules[name]
        sys.modules.update(saved_modules)


def _from_a_bundle(module: object) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    kept = (Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), REPO_ROOT)
    return not any(path.is_relative_to(root) for root in kept)
