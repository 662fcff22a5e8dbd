"""The Airflow-style DAG files of tests/airflow_corpus run unchanged, to the expected states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.loader import load_dags
from chalicelib.secrets import lookup

CORPUS = Path(__file__).resolve().parent.parent / "airflow_corpus"

EXPECTED: dict[str, tuple[str, dict[str, str], dict[str, int]]] = {
    "classic_dag_kwarg.py": (
        "success",
        {"start": "success", "extract": "success", "load": "success", "report": "success"},
        {},
    ),
    "with_dag_trigger_rules.py": (
        "failed",
        {
            "begin": "success",
            "skipped": "skipped",
            "after_skip": "skipped",
            "failed": "failed",
            "retried": "failed",
            "after_fail": "upstream_failed",
            "on_failure": "success",
            "cleanup": "success",
            "tolerant": "success",
        },
        # AirflowFailException ignores retries=3; AirflowException retries once.
        {"failed": 1, "retried": 2},
    ),
    "branching.py": (
        "success",
        {
            "pick": "success",
            "weekday_path": "success",
            "weekend_path": "skipped",
            "join": "success",
            "gate": "success",
            "never": "skipped",
        },
        {},
    ),
    "taskflow_decorators.py": (
        "success",
        {
            "extract": "success",
            "transform.double": "success",
            "transform.total": "success",
            "big_enough": "success",
            "celebrate": "success",
            "shrug": "skipped",
            "who_am_i": "success",
        },
        {},
    ),
    "airflow3_sdk.py": (
        "success",
        {
            "greet": "success",
            "repeat": "success",
            "verify": "success",
            "checks.left": "success",
            "checks.right": "success",
            "first": "success",
            "second": "success",
            "shout": "success",
        },
        {},
    ),
    "secrets_from_env.py": ("success", {"read": "success", "templated": "success"}, {}),
    "xcom_map_zip.py": (
        "success",
        {
            "list_files": "success",
            "count_rows": "success",
            "copy[0]": "success",
            "copy[1]": "success",
            "copy[2]": "skipped",  # AirflowSkipException raised by the map function
            "pair_shortest[0]": "success",
            "pair_shortest[1]": "success",
            "pair_longest[0]": "success",
            "pair_longest[1]": "success",
            "pair_longest[2]": "success",
            "pair_upper[0]": "success",
            "pair_upper[1]": "success",
            "describe[0]": "success",
            "describe[1]": "success",
            "verify": "success",
        },
        {},
    ),
    # per index: the branch of the empty file (index 1) skips only upload[1]
    "mapped_task_group.py": (
        "success",
        {
            "list_files": "success",
            **{f"process.read[{i}]": "success" for i in range(3)},
            **{f"process.has_rows[{i}]": "success" for i in range(3)},
            "process.upload[0]": "success",
            "process.upload[1]": "skipped",
            "process.upload[2]": "success",
            "process.note_empty[0]": "skipped",
            "process.note_empty[1]": "success",
            "process.note_empty[2]": "skipped",
            "report": "success",
        },
        {},
    ),
    "depends_on_past.py": (
        "success",
        {"extract": "success", "transform": "success", "load": "success"},
        {},
    ),
    # The only failure is a teardown's, so the run succeeds; a skipped setup skips
    # its scope and its teardown.
    "setup_teardown.py": (
        "success",
        {
            "create_bucket": "success",
            "load": "success",
            "check": "success",
            "delete_bucket": "failed",
            "start_cluster": "success",
            "query": "success",
            "stop_cluster": "success",
            "provision": "skipped",
            "use_provisioned": "skipped",
            "deprovision": "skipped",
            "report.open": "success",
            "report.write": "success",
            "report.close": "success",
            "publish": "success",
        },
        {},
    ),
    "deadline_alerts.py": ("success", {"build_report": "success", "publish": "success"}, {}),
}


@pytest.fixture
def empty_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty store on moto behind the environment, as a fresh local stack has."""
    for name in ("AIRFLOW_VAR_CORPUS_TARGET",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_CORPUS_LIMIT", "10")
    monkeypatch.setenv("AIRFLOW_VAR_CORPUS_SETTINGS", '{"table": "sales"}')
    monkeypatch.setenv("AIRFLOW_CONN_CORPUS_DB", "postgres://etl:s3cret@db.example.com:5432/dw")
    lookup.install_backend(None)
    with mock_aws():
        yield
    lookup.install_backend(None)


def test_every_corpus_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.py")) == sorted(EXPECTED)


def test_the_corpus_loads_without_problems_and_leaves_no_airflow_behind() -> None:
    result = load_dags([str(CORPUS)])

    assert result.problems == []
    assert len(result.dags) == len(EXPECTED)
    with pytest.raises(ModuleNotFoundError):
        import airflow  # noqa: F401


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_corpus_dag_runs_to_the_expected_states(file_name: str, empty_store: None) -> None:
    state, task_states, tries = EXPECTED[file_name]
    result = load_dags([str(CORPUS / file_name)])
    assert result.problems == []
    (dag,) = result.dags.values()

    outcome = run_dag_test(dag, show=False)

    assert outcome.task_states == task_states, outcome.errors
    assert outcome.state == state
    for task_id, count in tries.items():
        assert outcome.tries[task_id] == count


def test_run_conf_reaches_an_airflow3_dag(empty_store: None) -> None:
    """``verify`` asserts the greeting built from the params, so other params change it."""
    (dag,) = load_dags([str(CORPUS / "airflow3_sdk.py")]).dags.values()

    result = run_dag_test(dag, show=False, conf={"who": "ops", "times": 3})

    assert result.task_states["verify"] == "success", result.errors


def test_depends_on_past_from_default_args_reaches_the_spec() -> None:
    (dag,) = load_dags([str(CORPUS / "depends_on_past.py")]).dags.values()
    tasks = dag.to_spec().tasks
    assert tasks["extract"].depends_on_past and not tasks["extract"].wait_for_downstream
    assert tasks["transform"].depends_on_past and tasks["transform"].wait_for_downstream
    assert not tasks["load"].depends_on_past
    assert dag.to_spec().past_wakes == {
        "extract": ("extract",),
        "transform": ("transform",),
        "load": ("transform",),
    }


def test_a_corpus_deadline_long_past_is_reported_and_called_back_once() -> None:
    """``page_on_call`` asserts the kwargs and context Airflow gives it; the other
    alert (an hour after the run was queued) is met and its callback never runs."""
    (dag,) = load_dags([str(CORPUS / "deadline_alerts.py")]).dags.values()

    result = run_dag_test(dag, show=False)

    (missed,) = result.missed_deadlines
    assert missed.index == 0 and missed.callback_ok
    assert missed.callback.endswith("page_on_call")
