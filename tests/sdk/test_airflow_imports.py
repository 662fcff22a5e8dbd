"""The airflow.* import hook: what resolves, what fails and how, and that it leaves no trace."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import operators.python
from chalicelib.sdk import TaskFailed, TaskSkipped
from chalicelib.sdk.airflow_imports import (
    airflow_imports,
    module_advice,
    resolve_name,
)
from chalicelib.sdk.airflow_names import AIRFLOW_NAMES, MISSING_MODULES, Missing
from chalicelib.sdk.dates import days_ago
from chalicelib.sdk.loader import load_dags
from tests.sdk.dagfiles import line_of, write_dag


def _no_airflow_left() -> None:
    assert not [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]
    assert not [f for f in sys.meta_path if type(f).__name__ == "AirflowFinder"]
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("airflow")


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, n) for m, names in AIRFLOW_NAMES.items() for n, e in names.items() if isinstance(e, str)],
)
def test_every_table_entry_resolves_to_an_object(module: str, name: str) -> None:
    assert resolve_name(module, name) is not None


def test_names_are_slipstreams_own_objects() -> None:
    with airflow_imports():
        from airflow.exceptions import AirflowFailException, AirflowSkipException
        from airflow.operators.python import PythonOperator
        from airflow.providers.standard.operators.python import (
            PythonOperator as StandardPythonOperator,
        )

    assert PythonOperator is operators.python.PythonOperator
    assert StandardPythonOperator is PythonOperator
    assert AirflowSkipException is TaskSkipped
    assert AirflowFailException is TaskFailed
    _no_airflow_left()


def test_star_import_gives_the_supported_names() -> None:
    namespace: dict[str, object] = {}
    with airflow_imports():
        exec("from airflow.operators.python import *", namespace)
    assert namespace["BranchPythonOperator"] is operators.python.BranchPythonOperator
    assert "ExternalPythonOperator" not in namespace


def test_missing_name_fails_validation_with_file_line_and_advice(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "venv.py",
        """
        from airflow import DAG
        from airflow.operators.python import ExternalPythonOperator  # here
        """,
    )

    result = load_dags([str(path)])

    (problem,) = result.problems
    assert problem.line == line_of(path, "# here")
    assert str(problem) == (
        f"{problem.file}:{problem.line}: airflow.operators.python.ExternalPythonOperator "
        "is not available in Slipstream: Slipstream runs tasks in the worker's own environment; "
        "install the packages in the bundle's requirements, or run a container image with "
        "executor=ExecutorConfig('ecs', image=...)"
    )
    assert "\n" not in str(problem)
    _no_airflow_left()


def test_unknown_provider_names_the_imported_names_and_the_package(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "bq.py",
        """
        from airflow import DAG
        from airflow.providers.google.cloud.operators.bigquery import (  # here
            BigQueryInsertJobOperator,
        )
        """,
    )

    (problem,) = load_dags([str(path)]).problems

    assert problem.line == line_of(path, "# here")
    assert problem.message.startswith(
        "airflow.providers.google.cloud.operators.bigquery.BigQueryInsertJobOperator "
        "is not available in Slipstream: Slipstream has no operators from "
        "apache-airflow-providers-google;"
    )
    _no_airflow_left()


def test_module_trees_with_advice_and_unknown_names(tmp_path: Path) -> None:
    sensors = write_dag(
        tmp_path, "sensor.py", "from airflow.sensors.filesystem import FileSensor\n"
    )
    unknown = write_dag(tmp_path, "unknown.py", "from airflow.operators.python import Nope\n")
    plain = write_dag(tmp_path, "plain.py", "import airflow.providers.slack.hooks.slack\n")

    result = load_dags([str(sensors), str(unknown), str(plain)])

    messages = {Path(p.file or "").name: p.message for p in result.problems}
    assert messages["sensor.py"] == (
        "airflow.sensors.filesystem.FileSensor is not available in Slipstream: "
        + MISSING_MODULES["airflow.sensors"]
    )
    assert messages["unknown.py"].startswith("airflow.operators.python.Nope is not available")
    assert "see docs/porting.md" in messages["unknown.py"]
    assert "apache-airflow-providers-slack" in messages["plain.py"]
    assert messages["plain.py"].startswith("airflow.providers.slack.hooks.slack is not available")


def test_a_files_own_import_error_fallback_still_works(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "fallback.py",
        """
        try:
            from airflow.providers.google.cloud.operators.gcs import GCSCreateBucketOperator
        except ImportError:
            GCSCreateBucketOperator = None
        from airflow.models import DAG
        from airflow.operators.empty import EmptyOperator

        with DAG("fallback", schedule=None):
            EmptyOperator(task_id="a")
        """,
    )

    result = load_dags([str(path)])

    assert result.problems == []
    assert list(result.dags) == ["fallback"]


def test_the_hook_is_gone_after_loading_even_a_broken_file(tmp_path: Path) -> None:
    write_dag(tmp_path, "ok.py", "from airflow import DAG\ndag = DAG('ok', schedule=None)\n")
    write_dag(tmp_path, "broken.py", "from airflow import DAG\nraise RuntimeError('boom')\n")

    result = load_dags([str(tmp_path)])

    assert list(result.dags) == ["ok"]
    assert len(result.problems) == 1
    _no_airflow_left()


@pytest.fixture
def real_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package named airflow on sys.path, standing in for a real Airflow install."""
    package = tmp_path / "site" / "airflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("REAL = True\nclass DAG:\n    pass\n")
    (package / "models.py").write_text("REAL_MODELS = True\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield package
    for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
        del sys.modules[name]


def test_a_real_airflow_is_not_shadowed_outside_the_loader(
    real_airflow: Path, tmp_path: Path
) -> None:
    import airflow

    assert airflow.REAL
    dag_file = write_dag(
        tmp_path,
        "uses.py",
        "from airflow import DAG\nfrom airflow.models import Variable\ndag = DAG('uses')\n",
    )

    result = load_dags([str(dag_file)])

    assert result.problems == []
    assert type(result.dags["uses"]).__module__ == "chalicelib.sdk.dag"
    assert sys.modules["airflow"] is airflow  # the one imported before, put back
    import airflow.models

    assert airflow.models.REAL_MODELS


def test_loads_on_several_threads_share_the_hook_and_remove_it_once(tmp_path: Path) -> None:
    files = [
        write_dag(
            tmp_path,
            f"d{i}.py",
            f"from airflow.sdk import DAG\nfrom airflow.operators.empty import EmptyOperator\n"
            f"with DAG('d{i}', schedule=None):\n    EmptyOperator(task_id='a')\n",
        )
        for i in range(6)
    ]
    results: list[object] = []

    def load(path: Path) -> None:
        results.append(load_dags([str(path)], import_timeout=0))

    threads = [threading.Thread(target=load, args=(f,)) for f in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(d for r in results for d in r.dags) == [f"d{i}" for i in range(6)]  # type: ignore[attr-defined]
    assert all(r.problems == [] for r in results)  # type: ignore[attr-defined]
    _no_airflow_left()


def test_an_airflow_import_inside_a_task_function_resolves_at_run_time(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "late.py",
        """
        from airflow.decorators import dag, task

        @dag(schedule=None)
        def late():
            @task
            def which():
                from airflow.operators.python import get_current_context
                return get_current_context()["dag"].dag_id

            which()

        late()
        """,
    )
    (dag,) = load_dags([str(path)]).dags.values()
    _no_airflow_left()

    result = dag.test()

    assert result.task_states == {"which": "success"}, result.errors
    _no_airflow_left()


def test_missing_entries_advise_something() -> None:
    for names in AIRFLOW_NAMES.values():
        for entry in names.values():
            if isinstance(entry, Missing):
                assert entry.advice.strip()
    assert "apache-airflow-providers-apache-spark" in module_advice(
        "airflow.providers.apache.spark.operators.spark_submit"
    )
    assert module_advice("airflow.sensors.filesystem") == MISSING_MODULES["airflow.sensors"]


def test_days_ago_is_midnight_utc_n_days_back() -> None:
    now = dt.datetime(2024, 3, 10, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

    assert days_ago(2, now=lambda: now) == dt.datetime(2024, 3, 8, tzinfo=dt.UTC)
    assert days_ago(0, hour=6, now=lambda: now) == dt.datetime(2024, 3, 10, 6, tzinfo=dt.UTC)


def test_timezone_datetime_is_utc_unless_told() -> None:
    with airflow_imports():
        from airflow.utils import timezone

    assert timezone.datetime(2024, 1, 1) == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    paris = dt.timezone(dt.timedelta(hours=1))
    assert timezone.datetime(2024, 1, 1, tzinfo=paris).utcoffset() == dt.timedelta(hours=1)
    assert timezone.utcnow().tzinfo is dt.UTC


def test_airflow_2_datasets_and_airflow_3_assets_schedule_a_dag(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "consumers.py",
        """
import datetime as dt
from airflow import DAG
from airflow.datasets import Dataset
from airflow.sdk import Asset
from airflow.operators.empty import EmptyOperator

with DAG("old_style", start_date=dt.datetime(2024, 1, 1), schedule=[Dataset("s3://b/raw.csv")]):
    EmptyOperator(task_id="t")

with DAG("new_style", start_date=dt.datetime(2024, 1, 1),
         schedule=Asset("s3://b/a") & Asset("s3://b/b")):
    EmptyOperator(task_id="t", outlets=[Asset("s3://b/out")])
""",
    )
    result = load_dags([str(path)])

    assert not result.problems
    specs = {dag_id: dag.to_spec() for dag_id, dag in result.dags.items()}
    assert specs["old_style"].asset_condition is not None
    assert specs["new_style"].asset_condition is not None
    assert specs["new_style"].tasks["t"].outlets
    _no_airflow_left()


def test_airflow_sensor_imports_are_slipstreams_sensors() -> None:
    from chalicelib.sdk.sensors import BaseSensorOperator
    from operators.sensors.s3 import S3KeySensor
    from operators.trigger_dagrun import TriggerDagRunOperator

    with airflow_imports():
        from airflow.operators.trigger_dagrun import TriggerDagRunOperator as Trigger
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor as Key
        from airflow.sensors.base import BaseSensorOperator as Base

    assert (Base, Key, Trigger) == (BaseSensorOperator, S3KeySensor, TriggerDagRunOperator)
    _no_airflow_left()
