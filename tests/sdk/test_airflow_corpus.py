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


def test_a_corpus_deadline_long_past_is_reported_and_called_back_once() -> None:
    """``page_on_call`` asserts the kwargs and context Airflow gives it; the other
    alert (an hour after the run was queued) is met and its callback never runs."""
    (dag,) = load_dags([str(CORPUS / "deadline_alerts.py")]).dags.values()

    result = run_dag_test(dag, show=False)

    (missed,) = result.missed_deadlines
    assert missed.index == 0 and missed.callback_ok
    assert missed.callback.endswith("page_on_call")
