"""A refused deploy leaves its failing files as the tenant's import errors (Airflow's
``/importErrors``); a successful deploy clears them; recording never breaks a deploy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.core.errors import Problem
from chalicelib.deploy.deployer import deploy
from chalicelib.store.event_log import EventLog
from chalicelib.store.import_errors import ImportErrors, per_file, remember_deploy
from tests.deploy.projects import NOW, Project

LATER = NOW + dt.timedelta(minutes=5)


def _deploy(project: Project, aws: Any, now: dt.datetime, tenant: str | None = None) -> Any:
    store, bundles, _ = aws
    return deploy(
        [str(project.dags)],
        store=store,
        bundles=bundles,
        bundle_root=str(project.root),
        now=now,
        stage="deploytest",
        tenant=tenant,
    )


def _errors(aws: Any) -> ImportErrors:
    return ImportErrors(aws[0].models.event_log)


def test_a_refused_deploy_records_one_error_per_failing_file(project: Project, aws: Any) -> None:
    project.write("dags/broken.py", "from chalicelib.sdk import DAG\nDAG(\n")
    project.write("dags/also_broken.py", "def f(:\n")

    report = _deploy(project, aws, NOW)

    assert not report.ok and aws[0].models.dag.count() == 0  # still all or nothing
    page = _errors(aws).list("default", order_by="filename")
    assert page.total == 2
    assert [e.filename for e in page.items] == ["dags/also_broken.py", "dags/broken.py"]
    broken = page.items[1]
    assert ":2: syntax error" in broken.stack_trace and "broken.py" in broken.stack_trace
    assert broken.bundle_name == "dags" and broken.timestamp == NOW
    assert _errors(aws).get("default", broken.import_error_id) == broken
    assert all(e.import_error_id < 2**53 for e in page.items)  # exact as a JavaScript number
    assert _errors(aws).list("acme").total == 0  # tenant-scoped
    assert (
        EventLog(aws[0].models.event_log)
        .list("default", limit=10, offset=0, descending=False)
        .total
        == 0
    )


def test_the_next_refusal_replaces_and_a_success_clears(project: Project, aws: Any) -> None:
    project.write("dags/broken.py", "def f(:\n")
    _deploy(project, aws, NOW)
    first = _errors(aws).list("default").items
    project.write("dags/broken.py", "x = 1\n")
    project.write("dags/other.py", "import no_such_module_here\n")

    _deploy(project, aws, LATER)

    second = _errors(aws).list("default").items
    assert [e.filename for e in second] == ["dags/other.py"]
    assert _errors(aws).get("default", first[0].import_error_id) is None
    assert aws[0].models.event_log.count("importerr#default") == 1  # the old one is gone

    project.write("dags/other.py", "x = 2\n")
    assert _deploy(project, aws, LATER + dt.timedelta(minutes=1)).ok
    assert _errors(aws).list("default").total == 0
    assert _errors(aws).files("default") == set()


def test_recording_twice_writes_once_and_readers_see_only_the_newest_batch(aws: Any) -> None:
    errors = _errors(aws)
    model = aws[0].models.event_log
    errors.replace("acme", {"dags/a.py": "dags/a.py:1: bad"}, NOW)
    # a crash after writing the next batch, before deleting the old one:
    newer = int(LATER.timestamp() * 1_000_000) * 1000
    extra = '{"filename": "dags/b.py", "stack_trace": "b"}'
    model("importerr#acme", newer, when=LATER, event="import_error", extra=extra).save()

    assert [e.filename for e in errors.list("acme").items] == ["dags/b.py"]
    errors.replace("acme", {"dags/b.py": "b"}, LATER)
    errors.replace("acme", {"dags/b.py": "b"}, LATER)  # run again
    assert model.count("importerr#acme") == 1 and errors.files("acme") == {"dags/b.py"}


def test_a_failing_table_never_hides_the_refusal(
    project: Project, aws: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken_table(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(ImportErrors, "replace", broken_table)
    project.write("dags/broken.py", "def f(:\n")

    report = _deploy(project, aws, NOW)

    assert not report.ok and any("broken.py" in str(p) for p in report.problems)
    assert "could not record the import errors" in caplog.text


def test_problems_are_grouped_by_file_relative_to_the_root(tmp_path: Any) -> None:
    root = tmp_path / "proj"
    problems = [
        Problem("first", file=str(root / "dags" / "a.py"), line=3),
        Problem("second", file=str(root / "dags" / "a.py"), line=9, dag_id="d"),
        Problem("bundle too big"),
    ]

    grouped = per_file(problems, str(root))

    assert grouped == {
        "dags/a.py": f"{root}/dags/a.py:3: first\n{root}/dags/a.py:9: DAG 'd': second",
        "(deploy)": "bundle too big",
    }


def test_the_in_memory_store_records_nothing_and_does_not_fail() -> None:
    from chalicelib.store.memory import InMemoryStateStore

    remember_deploy(InMemoryStateStore(), "default", [Problem("x", file="a.py")], NOW)
