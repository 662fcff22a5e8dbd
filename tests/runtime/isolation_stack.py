"""A worker stack whose DAG comes from a real bundle, for isolated-try tests.

The DAG file is written into a project folder, zipped into a bundle and stored
in a LocalBundleStore: the child interpreter imports it from the folder the
worker extracts, as in AWS. ``NoImportBundles`` fails a test whose worker
imports the DAG file itself in isolated mode.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chalicelib.deploy.bundle import build_bundle
from chalicelib.deploy.bundle_store import LocalBundleStore
from chalicelib.runtime.task_log import TaskLogSink
from chalicelib.sdk.loader import load_dags
from chalicelib.store.base import DagRecord, DagVersionRecord
from chalicelib.store.memory import InMemoryStateStore
from tests.runtime.test_task_log import ListWriter
from tests.scheduler.harness import FakeClock, Stack

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class NoImportBundles(LocalBundleStore):
    """A bundle store whose DAG import, if the worker calls it, fails the test."""

    def load_dag(self, key: str, fileloc: str, dag_id: str) -> Any:
        raise AssertionError("the worker imported the DAG file itself in isolated mode")


class ListLogs:
    """Task logs kept in memory, one writer per try."""

    def __init__(self) -> None:
        self.writers: dict[tuple[str, int], ListWriter] = {}

    def sink(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
    ) -> TaskLogSink:
        writer = self.writers.setdefault((task_id, try_number), ListWriter())
        return TaskLogSink(writer)

    def events(self, task_id: str, try_number: int = 1) -> list[tuple[str, str, str]]:
        lines = self.writers[(task_id, try_number)].lines
        return [(str(x["event"]), str(x["level"]), str(x["logger"])) for x in lines]


def bundle_stack(
    tmp_path: Path,
    source: str,
    *,
    credentials: Callable[[str], Mapping[str, str]] | None,
    tenant: str | None = None,
    bundles_class: type[LocalBundleStore] = NoImportBundles,
) -> tuple[Stack, ListLogs]:
    """A stack running the DAGs of ``source``, isolated when ``credentials`` is given."""
    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    path = project / "dags" / "iso.py"
    path.write_text(textwrap.dedent(source))
    loaded = load_dags([str(path)], check=False)
    assert not loaded.problems, loaded.problems
    bundle = build_bundle(project)
    store = bundles_class(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    store.put(bundle)
    stack = Stack(store=InMemoryStateStore(), clock=FakeClock(T0))
    for dag in loaded.dags.values():
        spec = dag.to_spec(bundle_root=str(project))
        stack.store.put_dag_version(
            DagVersionRecord(
                dag_id=spec.dag_id,
                version=spec.content_hash,
                spec_json=spec.model_dump_json(by_alias=True),
                created_at=T0,
                bundle_key=bundle.key,
            )
        )
        stack.store.upsert_dag(
            DagRecord(dag_id=spec.dag_id, current_version=spec.content_hash, tenant=tenant)
        )
    logs = ListLogs()
    stack.deps.bundles = store
    stack.deps.task_logs = logs
    stack.deps.task_credentials = credentials
    return stack, logs


def fixed_credentials(tenant: str) -> dict[str, str]:
    """Credentials that sign requests no server accepts: for tests that make no AWS call."""
    return {
        "AWS_ACCESS_KEY_ID": f"ASIATENANT{tenant.upper()[:8]}",
        "AWS_SECRET_ACCESS_KEY": "tenant-secret",
        "AWS_SESSION_TOKEN": "tenant-token",
    }


def run_once(tmp_path: Path, source: str, **options: Any) -> tuple[Stack, ListLogs, Any]:
    """Deploy ``source`` (isolated, fixed credentials unless told), run DAG ``iso`` to its end."""
    options.setdefault("credentials", fixed_credentials)
    stack, logs = bundle_stack(tmp_path, source, **options)
    run, _ = stack.scheduler.trigger("iso")
    stack.settle()
    return stack, logs, run


def instance(stack: Stack, run: Any, task_id: str) -> Any:
    ti = stack.store.get_instance(run.dag_id, run.run_id, task_id, -1)
    assert ti is not None, f"no instance of {task_id}"
    return ti
