"""BaseSensorOperator: reschedule by default, timeouts from the first poke,
soft_fail, poke mode, Airflow's exponential backoff, and bad arguments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.sdk import DAG, task
from chalicelib.sdk.clock import task_clock
from chalicelib.sdk.exceptions import SensorTimeout, TaskFailed, TaskRescheduled, TaskSkipped
from chalicelib.sdk.sensors import BaseSensorOperator, PokeReturnValue

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class Scripted(BaseSensorOperator):
    """Pokes from a script of answers (True/False/PokeReturnValue/exception)."""

    def __init__(self, *, answers: list[Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.answers = answers
        self.pokes = 0

    def poke(self, context: Any) -> Any:
        answer = self.answers[min(self.pokes, len(self.answers) - 1)]
        self.pokes += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer


class FakeTi:
    def __init__(self, first: dt.datetime | None):
        self.first = first

    def get_first_reschedule_date(self, context: Any = None) -> dt.datetime | None:
        return self.first


def _execute(sensor: BaseSensorOperator, now: dt.datetime, first: dt.datetime | None = None):
    with task_clock(lambda: now):
        return sensor.execute({"ti": FakeTi(first)})


def _sensor(**kwargs: Any) -> Scripted:
    with DAG("d", start_date=T0, schedule=None):
        return Scripted(task_id="s", **kwargs)


def test_reschedule_is_the_default_and_asks_for_the_next_poke() -> None:
    sensor = _sensor(answers=[False], poke_interval=90)
    assert sensor.mode == "reschedule"
    with pytest.raises(TaskRescheduled) as info:
        _execute(sensor, T0)
    assert info.value.reschedule_date == T0 + dt.timedelta(seconds=90)
    assert sensor.pokes == 1


def test_a_satisfied_poke_returns_its_xcom_value() -> None:
    assert _execute(_sensor(answers=[True]), T0) is None
    done = PokeReturnValue(is_done=True, xcom_value={"rows": 3})
    assert _execute(_sensor(answers=[done]), T0) == {"rows": 3}
    with pytest.raises(TaskRescheduled):
        _execute(_sensor(answers=[PokeReturnValue(False, "ignored")]), T0)


def test_timeout_counts_from_the_first_poke_of_the_try() -> None:
    sensor = _sensor(answers=[False], timeout=600, poke_interval=60)
    with pytest.raises(TaskRescheduled):  # 599 s since the first poke: poke again
        _execute(sensor, T0 + dt.timedelta(seconds=599), first=T0)
    with pytest.raises(SensorTimeout, match="exceeds the specified timeout of 600"):
        _execute(sensor, T0 + dt.timedelta(seconds=601), first=T0)


def test_soft_fail_skips_on_timeout_and_on_a_failing_poke() -> None:
    sensor = _sensor(answers=[False], timeout=10, soft_fail=True)
    with pytest.raises(TaskSkipped):
        _execute(sensor, T0 + dt.timedelta(seconds=11), first=T0)
    failing = _sensor(answers=[TaskFailed("boom")], soft_fail=True)
    with pytest.raises(TaskSkipped, match="soft_fail"):
        _execute(failing, T0)


def test_a_sensor_timeout_is_not_retried() -> None:
    assert SensorTimeout("x").non_retryable


def test_never_fail_skips_and_silent_fail_pokes_again() -> None:
    with pytest.raises(TaskSkipped, match="never_fail"):
        _execute(_sensor(answers=[RuntimeError("down")], never_fail=True), T0)
    silent = _sensor(answers=[RuntimeError("down")], silent_fail=True)
    with pytest.raises(TaskRescheduled):
        _execute(silent, T0)
    with pytest.raises(RuntimeError):
        _execute(_sensor(answers=[RuntimeError("down")]), T0)


def test_poke_mode_loops_in_one_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("chalicelib.sdk.clock.sleep", slept.append)
    sensor = _sensor(answers=[False, False, True], mode="poke", poke_interval=5)
    assert _execute(sensor, T0) is None
    assert (sensor.pokes, slept) == (3, [5.0, 5.0])


def test_exponential_backoff_follows_airflows_formula() -> None:
    sensor = _sensor(answers=[False], poke_interval=60, exponential_backoff=True, mode="poke")
    intervals = [sensor.next_poke_interval(T0, 0, n) for n in (1, 2, 3, 4)]
    # a floor of poke_interval * 2**(n-2) (at least 1 s) plus a jitter below it
    for n, interval in zip((1, 2, 3, 4), intervals, strict=True):
        floor = max(int(60 * 2 ** (n - 2)), 1)
        assert floor <= interval < 2 * floor
    assert intervals == [sensor.next_poke_interval(T0, 0, n) for n in (1, 2, 3, 4)]
    capped = _sensor(
        answers=[False],
        poke_interval=60,
        exponential_backoff=True,
        max_wait=dt.timedelta(seconds=70),
    )
    assert capped.next_poke_interval(T0, 10_000, 1) <= 70
    near_timeout = _sensor(answers=[False], poke_interval=60, exponential_backoff=True, timeout=100)
    assert near_timeout.next_poke_interval(T0, 95, 1) <= 5


def test_rescheduled_backoff_estimates_the_poke_count_from_time_elapsed() -> None:
    sensor = _sensor(answers=[False], poke_interval=60, exponential_backoff=True)
    early = sensor.next_poke_interval(T0, 0, 1)
    late = sensor.next_poke_interval(T0, 3600, 1)
    assert late > early  # an hour in, the waits have doubled several times


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "sometimes"}, "mode must be one of poke, reschedule"),
        ({"poke_interval": -1}, "poke_interval must not be negative"),
        ({"timeout": "soon"}, "timeout must be seconds or a timedelta"),
        ({"soft_fail": True, "never_fail": True}, "cannot both be set"),
    ],
)
def test_bad_arguments_say_what_and_where(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message) as info:
        _sensor(answers=[True], **kwargs)
    assert "'s'" in str(info.value)


def test_task_sensor_decorator_builds_a_reschedule_sensor() -> None:
    with DAG("deco", start_date=T0, schedule=None) as dag:

        @task.sensor(poke_interval=30, timeout=120)
        def wait_for(x: int) -> PokeReturnValue:
            return PokeReturnValue(is_done=x > 0, xcom_value=x)

        wait_for(1)
    operator = dag.get_task("wait_for")
    assert isinstance(operator, BaseSensorOperator)
    assert (operator.mode, operator.poke_interval, operator.timeout) == ("reschedule", 30.0, 120.0)
    assert dag.to_spec().tasks["wait_for"].task_id == "wait_for"
