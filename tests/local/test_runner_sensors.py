"""Sensors under ``dag.test()`` / ``slipstream dags test``: reschedule waits are
skipped on the virtual clock (as retry delays are), pokes keep the try number,
and timeouts fail or skip the sensor."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app
from chalicelib.core.states import TaskState
from chalicelib.sdk import DAG, task
from chalicelib.sdk.sensors import PokeReturnValue
from operators.sensors.date_time import DateTimeSensor, TimeDeltaSensor
from operators.sensors.python import PythonSensor

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _pokes(result: Any, label: str) -> list[tuple[int, TaskState]]:
    return [(r.try_number, r.state) for r in result.history if r.label == label]


def test_a_sensor_reschedules_twice_then_succeeds_in_the_same_try() -> None:
    answers = iter([False, False, True])
    seen: list[Any] = []
    with DAG("resched", start_date=T0, schedule=None) as dag:
        wait = PythonSensor(
            task_id="wait", python_callable=lambda: next(answers), poke_interval=3600
        )

        @task
        def after(ti=None) -> None:
            seen.append(ti.try_number)

        wait >> after()
    result = dag.test(logical_date=T0)
    assert result.state == "success"
    R = TaskState.UP_FOR_RESCHEDULE
    assert _pokes(result, "wait") == [(1, R), (1, R), (1, TaskState.SUCCESS)]
    assert result.tries["wait"] == 1
    assert seen == [1]
    assert result.wall_seconds < 30  # two one-hour waits, skipped


def test_task_sensor_passes_its_poke_value_downstream() -> None:
    count = {"n": 0}
    got: list[Any] = []
    with DAG("deco", start_date=T0, schedule=None) as dag:

        @task.sensor(poke_interval=60, timeout=3600)
        def files_ready() -> PokeReturnValue:
            count["n"] += 1
            return PokeReturnValue(is_done=count["n"] >= 3, xcom_value=["a.csv"])

        @task
        def load(files: list[str]) -> None:
            got.append(files)

        load(files_ready())
    result = dag.test(logical_date=T0)
    assert result.state == "success"
    assert got == [["a.csv"]]
    assert count["n"] == 3


def test_timeout_fails_the_sensor_without_retrying_it() -> None:
    with DAG("late", start_date=T0, schedule=None) as dag:
        PythonSensor(
            task_id="never",
            python_callable=lambda: False,
            poke_interval=600,
            timeout=3600,
            retries=2,
        )
    result = dag.test(logical_date=T0)
    assert result.task_states == {"never": "failed"}
    assert result.tries == {"never": 1}
    assert "SensorTimeout" in result.errors["never"]
    # first poke at 0 s, then every 600 s until past 3600 s: 7 pokes
    assert len(_pokes(result, "never")) == 7


def test_soft_fail_skips_the_sensor_and_its_downstream() -> None:
    with DAG("soft", start_date=T0, schedule=None) as dag:
        wait = PythonSensor(
            task_id="wait",
            python_callable=lambda: False,
            poke_interval=600,
            timeout=1200,
            soft_fail=True,
        )

        @task
        def after() -> None:
            raise AssertionError("must not run")

        wait >> after()
    result = dag.test(logical_date=T0)
    assert result.task_states == {"wait": "skipped", "after": "skipped"}
    assert result.state == "success"


def test_time_sensors_wait_on_the_virtual_clock() -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with DAG("clock", start_date=T0, schedule=None) as dag:
        TimeDeltaSensor(task_id="delta", delta=dt.timedelta(hours=2), poke_interval=1800)
        DateTimeSensor(
            task_id="until",
            target_time="{{ (logical_date + macros.timedelta(hours=1)).isoformat() }}",
            poke_interval=900,
        )
    result = dag.test(logical_date=now)
    assert result.task_states == {"delta": "success", "until": "success"}
    # 2 h after the interval end, every 30 min: four waits then success
    assert [s for _, s in _pokes(result, "delta")].count(TaskState.UP_FOR_RESCHEDULE) == 4
    assert len(_pokes(result, "until")) == 5


def test_poke_mode_holds_its_try_and_loops() -> None:
    answers = iter([False, False, True])
    with DAG("poke", start_date=T0, schedule=None) as dag:
        PythonSensor(
            task_id="wait", python_callable=lambda: next(answers), mode="poke", poke_interval=0
        )
    result = dag.test(logical_date=T0)
    assert _pokes(result, "wait") == [(1, TaskState.SUCCESS)]


SENSOR_DAG = """
from chalicelib.sdk import DAG
from operators.sensors.python import PythonSensor

state = {"n": 0}

def ready():
    state["n"] += 1
    return state["n"] >= 3

with DAG("sensing") as dag:
    PythonSensor(task_id="wait", python_callable=ready, poke_interval=300)
"""


def test_dags_test_json_shows_the_rescheduled_pokes(tmp_path: Path) -> None:
    _register_commands()
    path = tmp_path / "sensing.py"
    path.write_text(textwrap.dedent(SENSOR_DAG))
    result = CliRunner().invoke(app, ["dags", "test", str(path), "sensing", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["task_states"] == {"wait": "success"}
    assert [h["state"] for h in data["history"]] == [
        "up_for_reschedule",
        "up_for_reschedule",
        "success",
    ]
    assert {h["try_number"] for h in data["history"]} == {1}


def test_mapped_sensors_reschedule_each_instance() -> None:
    def second_poke(n: int, ti=None) -> bool:
        return ti.get_first_reschedule_date() is not None

    with DAG("mapped", start_date=T0, schedule=None) as dag:
        waits = PythonSensor.partial(
            task_id="wait", python_callable=second_poke, poke_interval=60
        ).expand(op_args=[[1], [2], [3]])

        @task
        def after() -> str:
            return "ok"

        waits >> after()
    result = dag.test(logical_date=T0)
    assert result.state == "success"
    for index in range(3):
        assert _pokes(result, f"wait[{index}]") == [
            (1, TaskState.UP_FOR_RESCHEDULE),
            (1, TaskState.SUCCESS),
        ]
