from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import chalicelib
from chalicelib.core.spec import DagSpec
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.sdk.loader import load_dags
from tests.sdk.dagfiles import line_of, write_dag

PIPELINE = """
import datetime as dt
import pendulum
from chalicelib.sdk import DAG, Param, TaskGroup, task
from operators.empty import EmptyOperator
from operators.python import PythonOperator


def notify(context):
    return None


def transform(rows, scale=1):
    return [r * scale for r in rows]


with DAG(
    "pipeline",
    schedule="0 * * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Paris"),
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    params={"limit": Param(10, type="integer")},
    tags={"b", "a"},
    on_failure_callback=notify,
) as dag:
    @task
    def extract() -> dict[str, list[int]]:
        return {"rows": [1, 2]}

    data = extract()
    with TaskGroup("work"):
        shaped = PythonOperator(  # shaped
            task_id="shape",
            python_callable=transform,
            op_args=[data["rows"]],
            op_kwargs={"scale": 2, "when": dt.date(2024, 1, 1), "tags": {"y", "x"}},
            trigger_rule="all_done",
        )
    done = EmptyOperator(task_id="done", on_success_callback=lambda context: None)
    shaped >> done
    fan = PythonOperator.partial(task_id="fan", python_callable=transform).expand(
        op_args=[[[1]], [[2]]]
    )
"""


def load_spec(folder: Path) -> DagSpec:
    result = load_dags([str(folder / "pipeline.py")])
    assert result.problems == []
    return result.dags["pipeline"].to_spec(bundle_root=str(folder))


def test_spec_records_tasks_edges_refs_and_lines(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "pipeline.py", PIPELINE)
    spec = load_spec(tmp_path)

    shape = spec.tasks["work.shape"]
    assert spec.fileloc == "pipeline.py" and spec.sdk_version == chalicelib.__version__
    assert spec.timezone == "Europe/Paris" and spec.timetable.type == "cron_trigger"
    assert spec.start_date == dt.datetime(2023, 12, 31, 23, tzinfo=dt.UTC)
    assert spec.tags == ["a", "b"]
    assert spec.on_failure_callback == "pipeline:notify"
    assert shape.operator == "operators.python.PythonOperator"
    assert shape.callable == "pipeline:transform"
    assert shape.line == line_of(path, "# shaped")
    assert shape.upstream == ["extract"] and shape.downstream == ["done"]
    assert shape.trigger_rule is TriggerRule.ALL_DONE
    assert shape.retries == 2 and shape.retry_delay == 60.0
    assert shape.group_id == "work"
    assert shape.args["op_args"] == [{"__xcom__": {"task_id": "extract", "key": "rows"}}]
    assert shape.args["op_kwargs"] == {
        "scale": 2,
        "when": {"__date__": "2024-01-01"},
        "tags": ["x", "y"],
    }
    assert spec.tasks["extract"].multiple_outputs is True
    assert spec.tasks["extract"].callable == "pipeline:extract"
    assert spec.tasks["done"].on_success_callback == "pipeline:<lambda>"
    assert spec.params["limit"].schema_ == {"type": "integer"}


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    write_dag(tmp_path, "pipeline.py", PIPELINE)
    spec = load_spec(tmp_path)

    again = DagSpec.from_json(spec.model_dump_json(by_alias=True))

    assert again == spec
    assert again.canonical_json() == spec.canonical_json()
    assert again.content_hash == spec.content_hash


def test_hash_is_stable_across_loads_and_processes(tmp_path: Path) -> None:
    write_dag(tmp_path, "pipeline.py", PIPELINE)
    first = load_spec(tmp_path).content_hash
    second = load_spec(tmp_path).content_hash
    script = (
        "from chalicelib.sdk.loader import load_dags\n"
        f"r = load_dags([{str(tmp_path / 'pipeline.py')!r}])\n"
        f"print(r.dags['pipeline'].to_spec(bundle_root={str(tmp_path)!r}).content_hash)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(repo), "PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
    )

    assert first == second == completed.stdout.strip()


def test_hash_does_not_depend_on_where_the_bundle_lives(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two" / "deeper"
    one.mkdir()
    two.mkdir(parents=True)
    write_dag(one, "pipeline.py", PIPELINE)
    write_dag(two, "pipeline.py", PIPELINE)

    assert load_spec(one).content_hash == load_spec(two).content_hash


def test_a_change_in_the_dag_changes_the_hash(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write_dag(one, "pipeline.py", PIPELINE)
    write_dag(two, "pipeline.py", PIPELINE.replace("[[2]]]", "[[3]]]"))

    assert load_spec(one).content_hash != load_spec(two).content_hash


def test_ten_thousand_tasks_serialize_and_validate() -> None:
    """How fast is bench/local_test.py's figure; here only that it works."""
    from chalicelib.sdk import DAG, chain, task
    from operators.empty import EmptyOperator

    @task
    def step(value: int) -> int:
        return value

    with DAG("big") as dag:
        chain(*[EmptyOperator(task_id=f"t{i}") for i in range(5_000)])
        previous = step(0)
        for _ in range(4_999):
            previous = step(previous)

    spec = dag.to_spec()

    assert len(spec.tasks) == 10_000 and len(spec.content_hash) == 64
    assert spec.tasks["t4999"].upstream == ["t4998"]
